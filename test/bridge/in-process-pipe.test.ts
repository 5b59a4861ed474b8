// The in-process pipe between a client and the broker, in Node (it uses nothing of the browser): a
// real Broker on the real wasm core, the native client on the other end.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MqttClient } from '../../host/client/client.js';
import type { ReceivedMessage } from '../../host/client/types.js';
import { inProcessPipe } from '../../host/bridge/in-process-pipe.js';
import { Broker } from '../../host/core/broker.js';
import { loadNodeCore } from '../../host/node/load-core.js';
import { until } from '../helpers/wait.js';

describe('in-process pipe', () => {
  let broker: Broker;
  const connect = (options: Parameters<typeof MqttClient.connect>[1]) => {
    const { transport, link } = inProcessPipe();
    broker.accept(transport);
    return MqttClient.connect(link, { keepAlive: 0, ...options });
  };

  before(async () => {
    broker = new Broker(await loadNodeCore());
    await broker.start();
  });
  after(async () => {
    await broker.close();
    assert.equal(broker.core.arenaStats().liveHandles, 0, 'the arena is empty after close');
  });

  it('crosses on a later microtask, never inside the caller', async () => {
    const a = await connect({ clientId: 'a' });
    const got: ReceivedMessage[] = [];
    await a.subscribe('m/#', { qos: 0 }, (m) => void got.push(m));
    const b = await connect({ clientId: 'b' });
    void b.publish('m/1', 'x');
    assert.equal(got.length, 0, 'nothing delivered synchronously');
    await until(() => got.length > 0);
    assert.equal(got.length, 1);
    await Promise.all([a.end(), b.end()]);
  });

  it('a client that ends gets its DISCONNECT through first: no will', async () => {
    const watcher = await connect({ clientId: 'watch' });
    const wills: string[] = [];
    await watcher.subscribe('will/#', { qos: 1 }, (m) => void wills.push(m.topic));
    const polite = await connect({ clientId: 'polite', will: { topic: 'will/polite', payload: 'x', qos: 1 } });
    const rude = await connect({ clientId: 'rude', will: { topic: 'will/rude', payload: 'x', qos: 1 } });
    assert.deepEqual(await polite.end(), { clean: true });
    rude.destroy();
    await until(() => wills.length > 0, 'a will');
    // Anything published before the answer to the watcher's own QoS 1 PUBLISH has reached it.
    await watcher.publish('barrier', '', { qos: 1 });
    assert.deepEqual(wills, ['will/rude']);
    await watcher.end();
  });

  it('the broker closing reaches the client with its DISCONNECT reason', async () => {
    const other = new Broker(await loadNodeCore());
    await other.start();
    const { transport, link } = inProcessPipe();
    other.accept(transport);
    const c = await MqttClient.connect(link, { clientId: 'c', keepAlive: 0 });
    await other.close();
    const info = await c.closed;
    assert.equal(info.clean, false);
    assert.equal(info.reasonCode, 0x8b);
  });

  it('a refused CONNECT closes the link without leaking a connection', async () => {
    const before = broker.connections.size;
    await assert.rejects(connect({ protocolVersion: 4, password: 'no user name' }), /password only together with a user name/);
    await until(() => broker.connections.size === before);
    assert.equal(broker.connections.size, before);
  });
});
