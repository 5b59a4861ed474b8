// The browser bundle's MQTT client (host/client), here over a real WebSocket (the `ws` package) to
// a real ArborMQ server, both protocol versions.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { connectWebSocket, ConnectRefusedError, type ConnectOptions, type MqttClient, type ReceivedMessage, type WebSocketConstructor } from '../../host/client/index.js';
import { ArborServer } from '../../host/node/server.js';
import { assertArenaEmpty } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';

const text = (m: ReceivedMessage): string => new TextDecoder().decode(m.payload);

describe('MqttClient over WebSocket against ArborMQ', () => {
  let server: ArborServer;
  let url: string;
  const clients: MqttClient[] = [];
  const connect = async (options: ConnectOptions = {}): Promise<MqttClient> => {
    const c = await connectWebSocket(url, { WebSocketImpl: WebSocket as unknown as WebSocketConstructor, ...options });
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await ArborServer.start({ listeners: [{ protocol: 'ws', port: 0, host: '127.0.0.1' }], authenticate: (r) => r.username !== 'nobody' });
    url = `ws://127.0.0.1:${server.port}/mqtt`;
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.end()));
    await server.close();
    await assertArenaEmpty(server.broker.core);
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`publishes and receives QoS 0, 1 and 2 in order (v${protocolVersion})`, async () => {
      const sub = await connect({ protocolVersion, clientId: `sub-${protocolVersion}` });
      const pub = await connect({ protocolVersion, clientId: `pub-${protocolVersion}` });
      const got: ReceivedMessage[] = [];
      const results = await sub.subscribe(`v${protocolVersion}/#`, { qos: 2 }, (m) => void got.push(m));
      assert.deepEqual(results, [{ filter: `v${protocolVersion}/#`, reasonCode: 2 }]);
      await Promise.all([0, 1, 2].map((qos) => pub.publish(`v${protocolVersion}/q${qos}`, `m${qos}`, { qos: qos as 0 | 1 | 2 })));
      await until(() => got.length >= 3, '3 messages');
      assert.deepEqual(got.map((m) => [m.topic, text(m), m.qos]), [
        [`v${protocolVersion}/q0`, 'm0', 0],
        [`v${protocolVersion}/q1`, 'm1', 1],
        [`v${protocolVersion}/q2`, 'm2', 2],
      ]);
    });
  }

  it('passes 5.0 properties through and reports subscription identifiers', async () => {
    const sub = await connect({ clientId: 'props-sub' });
    const pub = await connect({ clientId: 'props-pub' });
    const got: ReceivedMessage[] = [];
    await sub.subscribe('props/+', { qos: 1, subscriptionIdentifier: 42 }, (m) => void got.push(m));
    await pub.publish('props/a', 'x', { qos: 1, properties: { contentType: 'text/plain', userProperties: [['k', 'v']], correlationData: Uint8Array.of(1, 2) } });
    await until(() => got.length >= 1, 'the message');
    const p = got[0]!.properties;
    assert.equal(p.contentType, 'text/plain');
    assert.deepEqual(p.userProperties, [['k', 'v']]);
    assert.deepEqual([...p.correlationData!], [1, 2]);
    assert.deepEqual(p.subscriptionIdentifiers, [42]);
  });

  it('resumes a persistent session: messages published while away arrive on reconnect', async () => {
    const first = await connect({ clientId: 'persist', clean: false, sessionExpiryInterval: 600 });
    await first.subscribe('persist/t', { qos: 1 });
    await first.end();
    const pub = await connect({ clientId: 'persist-pub' });
    for (let i = 0; i < 5; i++) await pub.publish('persist/t', String(i), { qos: 1 });
    const got: string[] = [];
    const second = await connect({ clientId: 'persist', clean: false, sessionExpiryInterval: 600, onMessage: (m) => void got.push(text(m)) });
    assert.equal(second.sessionPresent, true);
    await until(() => got.length >= 5, '5 messages');
    assert.deepEqual(got, ['0', '1', '2', '3', '4']);
  });

  it('waits for an async handler before acknowledging, in arrival order', async () => {
    const sub = await connect({ clientId: 'slow', clean: false, sessionExpiryInterval: 600 });
    const pub = await connect({ clientId: 'slow-pub' });
    const releases: (() => void)[] = [];
    await sub.subscribe('slow/t', { qos: 1 }, () => new Promise<void>((r) => releases.push(r)));
    await pub.publish('slow/t', 'a', { qos: 1 });
    await pub.publish('slow/t', 'b', { qos: 1 });
    await until(() => releases.length >= 2, 'both releases');
    const session = server.broker.sessions.get('slow')!;
    assert.equal(session.inflight.size, 2, 'nothing acknowledged while the handlers run');
    releases[1]!();
    // A QoS 1 PUBLISH of its own, answered: an acknowledgement sent before it would have been read first.
    await sub.publish('slow/barrier', '', { qos: 1 });
    assert.equal(session.inflight.size, 2, 'the second ack waits for the first');
    releases[0]!();
    await until(() => session.inflight.size === 0, 'nothing in flight');
    assert.equal(session.inflight.size, 0);
  });

  it('publishes the will when destroyed, not when ended', async () => {
    const watcher = await connect({ clientId: 'will-watch' });
    const got: string[] = [];
    await watcher.subscribe('will/#', { qos: 1 }, (m) => void got.push(m.topic));
    const a = await connect({ clientId: 'will-a', will: { topic: 'will/a', payload: 'gone', qos: 1 } });
    const b = await connect({ clientId: 'will-b', will: { topic: 'will/b', payload: 'gone', qos: 1 } });
    a.destroy();
    await b.end();
    await until(() => got.length >= 1, 'a will', 1000);
    // Anything published before the answer to the watcher's own QoS 1 PUBLISH has reached it.
    await watcher.publish('barrier', '', { qos: 1 });
    assert.deepEqual(got, ['will/a']);
  });

  it('rejects a refused CONNECT with the reason code', async () => {
    await assert.rejects(connect({ protocolVersion: 5, username: 'nobody', password: 'x' }), (e: unknown) => e instanceof ConnectRefusedError && e.reasonCode === 0x86);
    await assert.rejects(connect({ protocolVersion: 4, username: 'nobody', password: 'x' }), (e: unknown) => e instanceof ConnectRefusedError && e.reasonCode === 4);
  });
});
