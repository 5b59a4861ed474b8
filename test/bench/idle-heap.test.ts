import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IdleCost } from '../../bench/idle-heap.js';
import { spawnTs, stopChild } from '../../bench/children.js';

/** bench/idle-heap.ts over real TCP: 200 connections, then 800 more, the growth per connection. */
async function idleCost(server: 'arbormq' | 'bare'): Promise<IdleCost> {
  const child = spawnTs('bench/idle-heap.ts', ['--server', server, '--warm', '200', '--connections', '800', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  try {
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, err);
  } finally {
    await stopChild(child);
  }
  const cost = JSON.parse(out) as IdleCost;
  assert.equal(cost.connections, 800);
  return cost;
}

/** What an idle connection costs the broker's heap, against a bare Node `net` server measured the same way. */
describe('npm run bench:idle-heap', () => {
  it('an idle ArborMQ connection adds at most 1 KiB of V8 heap to what a bare Node net server holds per socket, with no net.Socket, listener closures, outbox, in-flight map or handler state of its own', { timeout: 240_000 }, async () => {
    const bare = await idleCost('bare');
    const cost = await idleCost('arbormq');
    const per = (key: string): number => cost.classes.find(([k]) => k === key)?.[1] ?? 0;
    // Every connection is there: one Connection, one Session, one libuv TCP handle each — and no net.Socket around it.
    for (const key of ['object Connection', 'object Session', 'object TCP', 'object HandleTransport']) assert.ok(Math.abs(per(key) - 1) < 0.01, `${key}: ${per(key)} per connection`);
    for (const key of ['object Socket', 'object ReadableState', 'object WritableState']) assert.ok(per(key) < 0.01, `${key}: ${per(key)} per connection`);
    // The handle's reads reach the connection through one shared callback, and the connection is the framer's sink.
    for (const key of ['closure', 'closure data', 'closure close', 'closure onPacket']) assert.ok(per(key) < 0.01, `${key}: ${per(key)} per connection`);
    // The transport is the gate's peer; no connection keeps handler state or a map of its own.
    for (const key of ['object Peer', 'object ClientState', 'object Map']) assert.ok(per(key) < 0.01, `${key}: ${per(key)} per connection`);
    // Output is built in an outbox lent for a turn: the pool keeps as many as one turn lent at most,
    // here one per CONNACK of a turn, and the client has 128 handshakes in flight (bench/idle-heap.ts) — not one per connection.
    const outboxes = per('object Outbox') * cost.connections;
    assert.ok(outboxes <= 128, `${outboxes.toFixed(0)} more Outboxes for ${cost.connections} more connections`);
    const over = cost.heapUsed - bare.heapUsed;
    assert.ok(over <= 1024, `V8 heap used per idle connection: ${cost.heapUsed.toFixed(0)} bytes, a bare server's ${bare.heapUsed.toFixed(0)}: ${over.toFixed(0)} more`);
  });
});
