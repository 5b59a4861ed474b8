// QoS 0 throughput between P publishers and S subscribers that all subscribe to every published
// topic (fan-in: many → 1, fan-out: 1 → many, gc: 1 → 1 for a fixed count).

import { closeAll, connectMany, firstLost, type BenchConn } from './conn.js';
import { Flow, Pump, type Source } from './flow.js';
import { progress } from './ipc.js';
import { measureWindows, settle } from './measure.js';
import { publishPacket, repeated } from './packets.js';
import type { LoadConfig, ScenarioResult, WindowResult } from './types.js';

export const PAYLOAD_BYTES = 64;
/** Payload bytes a scenario keeps in flight end to end at most: large payloads get a shallower window. */
const IN_FLIGHT_BYTES = 256 * 1024 * 1024;
/** Bytes of PUBLISHes per generator write at most: large payloads go one per write. */
const WRITE_BYTES = 64 * 1024;

/**
 * The plan for payloads of `payloadBytes`: at most `plan.batch` messages per write and
 * `plan.windowDeliveries` in flight, fewer where that many would pass WRITE_BYTES or IN_FLIGHT_BYTES.
 */
export function scaledPlan(plan: Qos0Plan, payloadBytes: number): Qos0Plan {
  const batch = Math.max(1, Math.min(plan.batch, Math.floor(WRITE_BYTES / payloadBytes)));
  const fanout = plan.subscribers;
  const messages = Math.max(2 * plan.publishers, Math.min(plan.windowDeliveries / fanout, Math.floor(IN_FLIGHT_BYTES / (payloadBytes * fanout))));
  return { ...plan, batch, windowDeliveries: Math.max(messages, batch * plan.publishers * 2) * fanout };
}

export interface Qos0Plan {
  tag: string;
  publishers: number;
  subscribers: number;
  topicOf(publisher: number): string;
  filter: string;
  /** Messages per socket write. */
  batch: number;
  /** End-to-end window, in messages per publisher-subscriber path summed (deliveries). */
  windowDeliveries: number;
}

export interface Qos0Rig {
  flow: Flow;
  pump: Pump;
  subs: BenchConn[];
  pubs: BenchConn[];
  /** Stops sending once this many messages were written (undefined: no limit). */
  setTotal(messages: number | undefined): void;
  received(): number;
  /** Stops, waits for what is in flight, closes; notes what was lost. */
  finish(notes: string[], metrics: ScenarioResult['metrics']): Promise<void>;
}

export async function qos0Rig(cfg: LoadConfig, requested: Qos0Plan): Promise<Qos0Rig> {
  const payloadBytes = cfg.payloadBytes ?? PAYLOAD_BYTES;
  const plan = payloadBytes === PAYLOAD_BYTES ? requested : scaledPlan(requested, payloadBytes);
  progress('connecting', { publishers: plan.publishers, subscribers: plan.subscribers });
  const subs = await connectMany(cfg.port, `${plan.tag}-sub-${process.pid}`, plan.subscribers);
  await Promise.all(subs.map((s) => s.subscribe([plan.filter], 0, 10_000)));
  const pubs = await connectMany(cfg.port, `${plan.tag}-pub-${process.pid}`, plan.publishers);
  progress('subscribed');

  const flow = new Flow(plan.windowDeliveries);
  const payload = Buffer.alloc(payloadBytes, 0x62);
  const fanout = plan.subscribers;
  let total: number | undefined;
  let written = 0;
  const sources: Source[] = pubs.map((conn, p) => {
    const batch = repeated(publishPacket(plan.topicOf(p), payload, 0), plan.batch);
    return {
      conn,
      nextDeliveries: () => (total !== undefined && written + plan.batch > total ? -1 : plan.batch * fanout),
      writeNext: () => {
        conn.write(batch);
        written += plan.batch;
      },
    };
  });
  const pump = new Pump(flow, sources);
  for (const s of subs) {
    s.onPublish = () => {
      flow.received++;
    };
    s.onChunkEnd = () => pump.kick();
  }
  return {
    flow,
    pump,
    subs,
    pubs,
    setTotal: (n) => {
      total = n === undefined ? undefined : Math.floor(n / plan.batch) * plan.batch;
    },
    received: () => flow.received,
    async finish(notes, metrics) {
      pump.stop();
      progress('settling', { sent: flow.sent, received: flow.received });
      await settle(() => flow.received >= flow.sent, () => flow.received, 1000, 5000);
      const lost = Math.max(0, flow.sent - flow.received);
      metrics.lost = lost;
      if (lost > 0) notes.push(`${lost} of ${flow.sent} deliveries never arrived (broker dropped QoS 0 messages)`);
      const gone = firstLost([...subs, ...pubs]);
      if (gone) notes.push(gone);
      closeAll([...subs, ...pubs]);
    },
  };
}

/** Warm-up + measured windows of a QoS 0 plan. */
export async function qos0Throughput(cfg: LoadConfig, plan: Qos0Plan): Promise<ScenarioResult> {
  const rig = await qos0Rig(cfg, plan);
  rig.pump.start();
  let windows: WindowResult[];
  const notes: string[] = [];
  const metrics: ScenarioResult['metrics'] = {};
  try {
    windows = await measureWindows(cfg, rig.received);
  } finally {
    await rig.finish(notes, metrics);
  }
  return { unit: plan.subscribers > 1 ? 'deliveries/s' : 'msgs/s', windows, metrics, notes };
}
