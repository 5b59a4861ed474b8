// Wildcard routing: 10,000 filters with + and # over 100 connections, rounds of publishes over
// 30,000 topics, and an exact check of how many times each connection got each topic.

import { closeAll, connectMany, firstLost } from './conn.js';
import { Flow, Pump, type Source } from './flow.js';
import { progress } from './ipc.js';
import { measureWindows, settle } from './measure.js';
import { indexPayload, publishPacket } from './packets.js';
import { wildcardData } from './wildcard-data.js';
import { rng, shuffle } from '../stats.js';
import type { LoadConfig, ScenarioResult } from './types.js';

const CONNECTIONS = 100;
const PUBLISHERS = 4;
const BATCH = 64;

/** A loop beats Buffer.compare's native call for topics this short. */
function sameBytes(buf: Buffer, at: number, expected: Buffer): boolean {
  for (let i = 0; i < expected.length; i++) if (buf[at + i] !== expected[i]) return false;
  return true;
}

export async function wildcard(cfg: LoadConfig): Promise<ScenarioResult> {
  progress('preparing');
  const data = wildcardData(CONNECTIONS);
  const { topics, filters, match, matchCount } = data;
  const T = topics.length;
  const topicBytes = topics.map((t) => Buffer.from(t));

  progress('connecting');
  const subs = await connectMany(cfg.port, `wild-sub-${process.pid}`, CONNECTIONS);
  await Promise.all(subs.map((s, c) => s.subscribe(filters[c]!, 0, 30_000, 25)));
  const pubs = await connectMany(cfg.port, `wild-pub-${process.pid}`, PUBLISHERS);
  progress('subscribed', { filters: filters.reduce((n, f) => n + f.length, 0) });

  const flow = new Flow(50_000);
  const published = new Uint32Array(T);
  const counts = new Uint32Array(CONNECTIONS * T);
  let wrongTopic = 0;
  let malformed = 0;

  const order = shuffle(topics.map((_, i) => i), rng(11));
  const rounds = new Array<number>(PUBLISHERS).fill(0);
  const sources: Source[] = pubs.map((conn, p) => {
    const mine = order.filter((_, i) => i % PUBLISHERS === p);
    const packets = mine.map((t) => publishPacket(topics[t]!, indexPayload(t), 0));
    const all = Buffer.concat(packets);
    // Batch b covers mine[b*BATCH ..) and all[offsets[b] .. offsets[b+1]).
    const offsets: number[] = [0];
    const deliveries: number[] = [];
    for (let i = 0, at = 0; i < mine.length; i += BATCH) {
      let d = 0;
      for (let k = i; k < Math.min(i + BATCH, mine.length); k++) {
        at += packets[k]!.length;
        d += matchCount[mine[k]!]!;
      }
      offsets.push(at);
      deliveries.push(d);
    }
    let b = 0;
    return {
      conn,
      nextDeliveries: () => deliveries[b]!,
      writeNext: () => {
        conn.write(all.subarray(offsets[b], offsets[b + 1]));
        for (let k = b * BATCH; k < Math.min((b + 1) * BATCH, mine.length); k++) published[mine[k]!]++;
        if (++b === deliveries.length) {
          b = 0;
          rounds[p]!++;
        }
      },
    };
  });
  const pump = new Pump(flow, sources);

  subs.forEach((sub, c) => {
    const base = c * T;
    sub.onPublish = (buf, start, end, flags) => {
      flow.received++;
      const topicLength = (buf[start]! << 8) | buf[start + 1]!;
      const payloadAt = start + 2 + topicLength + (((flags >> 1) & 3) > 0 ? 2 : 0);
      if (end - payloadAt !== 4) {
        malformed++;
        return;
      }
      const t = ((buf[payloadAt]! << 24) | (buf[payloadAt + 1]! << 16) | (buf[payloadAt + 2]! << 8) | buf[payloadAt + 3]!) >>> 0;
      const expected = topicBytes[t];
      if (!expected || expected.length !== topicLength || !sameBytes(buf, start + 2, expected)) {
        wrongTopic++;
        return;
      }
      counts[base + t]++;
    };
    sub.onChunkEnd = () => pump.kick();
  });

  pump.start();
  const notes: string[] = [];
  const metrics: ScenarioResult['metrics'] = {};
  try {
    const windows = await measureWindows(cfg, () => flow.received);
    // Every topic is published at least once before the check.
    progress('completing a round', { rounds: rounds.join(',') });
    await settle(() => rounds.every((r) => r > 0), () => flow.sent, 5000, 60_000);
    pump.stop();
    progress('settling', { sent: flow.sent, received: flow.received });
    await settle(() => flow.received >= flow.sent, () => flow.received, 2000, 15_000);

    let missing = 0;
    let extra = 0;
    let pairsWrong = 0;
    let expectedTotal = 0;
    const examples: string[] = [];
    for (let c = 0; c < CONNECTIONS; c++) {
      for (let t = 0; t < T; t++) {
        const want = match[c * T + t] ? published[t]! : 0;
        const got = counts[c * T + t]!;
        expectedTotal += want;
        if (got === want) continue;
        pairsWrong++;
        if (got < want) missing += want - got;
        else extra += got - want;
        if (examples.length < 3) examples.push(`connection ${c} topic ${topics[t]}: expected ${want}, got ${got}`);
      }
    }
    const pass = missing === 0 && extra === 0 && wrongTopic === 0 && malformed === 0;
    Object.assign(metrics, {
      exactCheck: pass,
      topicsPublished: published.reduce((n, x) => n + (x > 0 ? 1 : 0), 0),
      filters: filters.reduce((n, f) => n + f.length, 0),
      expectedDeliveries: expectedTotal,
      missing,
      extra,
      wrongTopic,
      malformed,
      pairsWrong,
    });
    if (!pass) {
      notes.push(`exact check FAILED: ${missing} missing, ${extra} extra copies, ${wrongTopic} with a wrong topic, over ${pairsWrong} (connection, topic) pairs; e.g. ${examples.join('; ')}`);
    }
    return { unit: 'deliveries/s', windows, metrics, notes };
  } finally {
    pump.stop();
    const gone = firstLost([...subs, ...pubs]);
    if (gone) notes.push(gone);
    closeAll([...subs, ...pubs]);
  }
}
