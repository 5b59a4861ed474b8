/**
 * Fault points that tests of crash recovery set through the environment (ARBORMQ_CLUSTER_FAULT, a
 * comma-separated list) to make a crash or a slow link happen at one exact step in a real process.
 * Unset in production, where each is a constant false / 0 checked off the hot path.
 */
export interface FaultPoints {
  /** SIGKILL this process once a forward it received is durable, before it confirms it. */
  crashBeforeForwardAck: boolean;
  /** Hold every route announcement this many ms before sending it (a slow link, for route changes only). */
  routeDelayMs: number;
}

export function faultPoints(spec = process.env.ARBORMQ_CLUSTER_FAULT ?? ''): FaultPoints {
  const faults: FaultPoints = { crashBeforeForwardAck: false, routeDelayMs: 0 };
  for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value] = item.split('=') as [string, string | undefined];
    if (name === 'crash-before-forward-ack') faults.crashBeforeForwardAck = true;
    else if (name === 'route-delay-ms' && value !== undefined && Number(value) >= 0) faults.routeDelayMs = Number(value);
    else throw new Error(`unknown ARBORMQ_CLUSTER_FAULT ${JSON.stringify(item)}`);
  }
  return faults;
}
