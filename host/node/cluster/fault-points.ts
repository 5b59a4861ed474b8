/**
 * Fault points that tests of crash recovery set through the environment (ARBORMQ_CLUSTER_FAULT, a
 * comma-separated list) to make a crash or a slow link happen at one exact step in a real process.
 * Unset in production, where each is a constant false / 0 checked off the hot path.
 */
export interface FaultPoints {
  /** SIGKILL this process once a forward it received is durable, before it confirms it. */
  crashBeforeForwardAck: boolean;
  /** SIGKILL this process right after it installed a session handed over to it, before that is durable. */
  crashAfterTakeIn: boolean;
  /** SIGKILL this process when a forward it must relay to the new owner of a session that moved away arrives, before it relays it. */
  crashBeforeRelay: boolean;
  /** Hold every reply to a takeover request this many ms (an old owner answering after the asking node gave up). */
  takeoverReplyDelayMs: number;
  /** Hold every route announcement this many ms before sending it (a slow link, for route changes only). */
  routeDelayMs: number;
  /** Handle each etcd keepalive answer this many ms after it came (a busy node: its proof of the lease lapses while etcd keeps the lease). */
  keepaliveLateMs: number;
  /** Hold settling a hand-over — the reply to the old owner, the home record — this many ms once the session is durable here. */
  settleDelayMs: number;
  /** Hold claiming this node's sessions again after a fresh lease this many ms (a node busy restoring a large store). */
  reclaimDelayMs: number;
}

export function faultPoints(spec = process.env.ARBORMQ_CLUSTER_FAULT ?? ''): FaultPoints {
  const faults: FaultPoints = { crashBeforeForwardAck: false, crashAfterTakeIn: false, crashBeforeRelay: false, takeoverReplyDelayMs: 0, routeDelayMs: 0, keepaliveLateMs: 0, settleDelayMs: 0, reclaimDelayMs: 0 };
  for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value] = item.split('=') as [string, string | undefined];
    if (name === 'crash-before-forward-ack') faults.crashBeforeForwardAck = true;
    else if (name === 'crash-after-take-in') faults.crashAfterTakeIn = true;
    else if (name === 'crash-before-relay') faults.crashBeforeRelay = true;
    else if (name === 'takeover-reply-delay-ms' && value !== undefined && Number(value) >= 0) faults.takeoverReplyDelayMs = Number(value);
    else if (name === 'route-delay-ms' && value !== undefined && Number(value) >= 0) faults.routeDelayMs = Number(value);
    else if (name === 'keepalive-late-ms' && value !== undefined && Number(value) >= 0) faults.keepaliveLateMs = Number(value);
    else if (name === 'settle-delay-ms' && value !== undefined && Number(value) >= 0) faults.settleDelayMs = Number(value);
    else if (name === 'reclaim-delay-ms' && value !== undefined && Number(value) >= 0) faults.reclaimDelayMs = Number(value);
    else throw new Error(`unknown ARBORMQ_CLUSTER_FAULT ${JSON.stringify(item)}`);
  }
  return faults;
}
