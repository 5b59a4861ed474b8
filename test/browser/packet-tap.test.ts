// The packet tap (host/browser/packet-tap.ts) on a real broker and the native client over the
// in-process pipe, in Node: the QoS 1 and QoS 2 handshakes in the order they happen, both sides,
// identifiers and reason codes, a stream cut into single bytes, an observer that throws.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MqttClient } from '../../host/client/client.js';
import type { ClientLink } from '../../host/client/link.js';
import type { ConnectOptions } from '../../host/client/types.js';
import { inProcessPipe } from '../../host/bridge/in-process-pipe.js';
import { tapLink, type PacketEvent } from '../../host/browser/packet-tap.js';
import { Broker } from '../../host/core/broker.js';
import { loadNodeCore } from '../../host/node/load-core.js';
import { until } from '../helpers/wait.js';

/** "→ PUBLISH 1" style: direction, type, packet identifier when there is one. */
const brief = (e: PacketEvent): string => `${e.direction === 'out' ? '→' : '←'} ${e.type}${e.packetId === undefined ? '' : ` ${e.packetId}`}`;

/** A link that hands the client what it receives one byte at a time. */
function byteByByte(link: ClientLink): ClientLink {
  return {
    get bufferedAmount() {
      return link.bufferedAmount;
    },
    send: (bytes) => link.send(bytes),
    close: () => link.close(),
    attach: (events) =>
      link.attach({
        data: (chunk) => {
          for (let i = 0; i < chunk.length; i++) events.data(chunk.subarray(i, i + 1));
        },
        close: (error) => events.close(error),
      }),
  };
}

describe('packet tap', () => {
  let broker: Broker;
  const clients: MqttClient[] = [];
  const connect = async (options: ConnectOptions, wrap: (link: ClientLink) => ClientLink = (l) => l): Promise<{ client: MqttClient; events: PacketEvent[] }> => {
    const { transport, link } = inProcessPipe();
    broker.accept(transport);
    const events: PacketEvent[] = [];
    const client = await MqttClient.connect(
      tapLink(wrap(link), (e) => void events.push(e)),
      { keepAlive: 0, ...options },
    );
    clients.push(client);
    return { client, events };
  };

  before(async () => {
    broker = new Broker(await loadNodeCore());
    await broker.start();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.end()));
    await broker.close();
    assert.equal(broker.core.arenaStats().liveHandles, 0);
  });

  it('sees CONNECT and CONNACK with the protocol version and the reason code', async () => {
    for (const protocolVersion of [4, 5] as const) {
      const { events } = await connect({ clientId: `hello-${protocolVersion}`, protocolVersion });
      assert.equal(events.length, 2);
      const [connectEvent, connack] = events;
      assert.deepEqual({ ...connectEvent, at: 0, size: 0 }, { direction: 'out', type: 'CONNECT', at: 0, size: 0, protocolVersion });
      assert.deepEqual({ ...connack, at: 0 }, { direction: 'in', type: 'CONNACK', at: 0, size: connack!.size, sessionPresent: false, reasonCode: 0 });
      assert.ok(connack!.at >= connectEvent!.at);
    }
  });

  it('shows the QoS 1 and QoS 2 handshakes of publisher and subscriber in order', async () => {
    const sub = await connect({ clientId: 'tap-sub' });
    await sub.client.subscribe('h/#', { qos: 2 });
    const pub = await connect({ clientId: 'tap-pub' });
    await pub.client.publish('h/one', 'x', { qos: 1 });
    await pub.client.publish('h/two', 'y', { qos: 2 });
    await until(() => pub.events.length >= 8 && sub.events.length >= 10);
    assert.deepEqual(pub.events.slice(2).map(brief), ['→ PUBLISH 1', '← PUBACK 1', '→ PUBLISH 2', '← PUBREC 2', '→ PUBREL 2', '← PUBCOMP 2']);
    assert.deepEqual(sub.events.slice(2).map(brief), ['→ SUBSCRIBE 1', '← SUBACK 1', '← PUBLISH 1', '→ PUBACK 1', '← PUBLISH 2', '→ PUBREC 2', '← PUBREL 2', '→ PUBCOMP 2']);
    const publish = pub.events.find((e) => e.type === 'PUBLISH' && e.qos === 2)!;
    assert.deepEqual({ topic: publish.topic, qos: publish.qos, retain: publish.retain, dup: publish.dup }, { topic: 'h/two', qos: 2, retain: false, dup: false });
    assert.equal(sub.events.find((e) => e.type === 'SUBACK')!.reasonCodes?.[0], 2, 'granted QoS 2');
    const times = pub.events.map((e) => e.at);
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'timestamps never go backwards');
  });

  it('reports 3.1.1 SUBACK codes and UNSUBACK without any, and acknowledgement reason codes', async () => {
    const old = await connect({ clientId: 'tap-311', protocolVersion: 4 });
    await old.client.subscribe(['a/+', 'b/#'], { qos: 1 });
    await old.client.unsubscribe('a/+');
    const suback = old.events.find((e) => e.type === 'SUBACK')!;
    assert.deepEqual(suback.reasonCodes, [1, 1]);
    const unsuback = old.events.find((e) => e.type === 'UNSUBACK')!;
    assert.equal(unsuback.reasonCodes, undefined);
    // 5.0: a publish nobody subscribed to is acknowledged with 0x10 (no matching subscribers).
    const lonely = await connect({ clientId: 'tap-lonely' });
    await lonely.client.publish('nobody/listens', 'x', { qos: 1 });
    assert.equal(lonely.events.find((e) => e.type === 'PUBACK')!.reasonCode, 0x10);
    await lonely.client.unsubscribe('not/subscribed');
    assert.deepEqual(lonely.events.find((e) => e.type === 'UNSUBACK')!.reasonCodes, [0x11]);
  });

  it('frames a stream that arrives one byte at a time, and counts whole packets', async () => {
    const sub = await connect({ clientId: 'tap-bytes' }, byteByByte);
    await sub.client.subscribe('bytes/#', { qos: 1 });
    const pub = await connect({ clientId: 'tap-bytes-pub' });
    await pub.client.publish('bytes/big', new Uint8Array(300), { qos: 1, retain: true });
    await until(() => sub.events.filter((e) => e.direction === 'in').length >= 3);
    const incoming = sub.events.filter((e) => e.direction === 'in').map(brief);
    assert.deepEqual(incoming, ['← CONNACK', '← SUBACK 1', '← PUBLISH 1']);
    const publish = sub.events.find((e) => e.type === 'PUBLISH')!;
    // Fixed header (1 + 2-byte Remaining Length), topic (2 + 9), packet id 2, property length 1, payload 300.
    assert.equal(publish.size, 3 + 11 + 2 + 1 + 300);
    await pub.client.publish('bytes/big', '', { qos: 1, retain: true });
  });

  it('an observer that throws does not disturb the connection', async () => {
    const { transport, link } = inProcessPipe();
    broker.accept(transport);
    const thrown: unknown[] = [];
    // Browsers have reportError; here it stands in for the page's error event.
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'reportError');
    globalThis.reportError = (error: unknown): void => void thrown.push(error);
    try {
      const client = await MqttClient.connect(
        tapLink(link, () => {
          throw new Error('observer bug');
        }),
        { clientId: 'tap-throws', keepAlive: 0 },
      );
      await client.subscribe('t/#', { qos: 1 });
      await client.publish('t/x', 'still works', { qos: 1 });
      assert.ok(client.connected);
      // Ended while the stand-in is in place: its DISCONNECT is observed (and throws) too.
      assert.deepEqual(await client.end(), { clean: true });
    } finally {
      if (saved) Object.defineProperty(globalThis, 'reportError', saved);
      else delete (globalThis as { reportError?: unknown }).reportError;
    }
    assert.ok(thrown.length >= 4, 'each error is rethrown on its own, outside the connection');
    assert.ok(thrown.every((e) => (e as Error).message === 'observer bug'));
  });
});
