import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localBridgeId, resolveBridgeConfig } from '../../host/bridge/bridge-config.js';

describe('bridge configuration', () => {
  it('fills in the defaults', () => {
    const c = resolveBridgeConfig({ url: 'wss://x/mqtt', clientId: 'b', topics: [{ filter: 'a/#', direction: 'out' }] });
    assert.deepEqual(c.topics, [{ filter: 'a/#', direction: 'out', qos: 1, localPrefix: '', remotePrefix: '' }]);
    assert.equal(c.protocolVersion, 5);
    assert.equal(c.sessionExpiryInterval, 0xffffffff);
    assert.deepEqual(c.backoff, { initialMs: 500, maxMs: 30_000 });
    assert.equal(c.online, true);
    assert.equal(c.name, 'b', 'the name defaults to the clientId');
    assert.equal(localBridgeId('b'), 'bridge:b');
  });

  it('takes the URL schemes its host can open: WebSocket in a browser, mqtt:// and mqtts:// too on a server', () => {
    const base = { clientId: 'b', topics: [{ filter: 'a', direction: 'in' as const }] };
    assert.throws(() => resolveBridgeConfig({ ...base, url: 'mqtt://x:1883' }), /url must be a ws:\/\/ or wss:\/\/ URL/);
    const server = ['mqtt', 'mqtts', 'ws', 'wss'];
    assert.equal(resolveBridgeConfig({ ...base, url: 'mqtts://x:8883' }, server).url, 'mqtts://x:8883');
    assert.throws(() => resolveBridgeConfig({ ...base, url: 'http://x' }, server), /url must be an mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\/ URL/);
  });

  it('an empty filter maps one whole topic to another, as Mosquitto\'s topic "" out 1 local/x remote/y does', () => {
    const base = { url: 'ws://x/mqtt', clientId: 'b', name: 'uplink' };
    const c = resolveBridgeConfig({ ...base, topics: [{ filter: '', direction: 'out', localPrefix: 'local/x', remotePrefix: 'remote/y' }] });
    assert.equal(c.name, 'uplink');
    assert.deepEqual(c.topics[0], { filter: '', direction: 'out', qos: 1, localPrefix: 'local/x', remotePrefix: 'remote/y' });
    assert.throws(() => resolveBridgeConfig({ ...base, topics: [{ filter: '', direction: 'out', localPrefix: 'local/x' }] }), /may be empty only when/);
  });

  it('refuses what cannot work, saying why', () => {
    const base = { url: 'ws://x/mqtt', clientId: 'b', topics: [{ filter: 'a', direction: 'in' as const }] };
    assert.throws(() => resolveBridgeConfig({ ...base, url: 'http://x' }), /ws:\/\/ or wss:\/\//);
    assert.throws(() => resolveBridgeConfig({ ...base, protocolVersion: 3 as 4 }), /protocolVersion must be 4/);
    assert.throws(() => resolveBridgeConfig({ ...base, clientId: '' }), /clientId is required/);
    assert.throws(() => resolveBridgeConfig({ ...base, topics: [] }), /at least one mapping/);
    assert.throws(() => resolveBridgeConfig({ ...base, topics: [{ filter: 'a', direction: 'sideways' as 'in' }] }), /direction/);
    assert.throws(() => resolveBridgeConfig({ ...base, topics: [{ filter: 'a', direction: 'in', qos: 2 as 1 }] }), /qos must be 0 or 1/);
    assert.throws(() => resolveBridgeConfig({ ...base, protocolVersion: 4, topics: [{ filter: 'a', direction: 'both' }] }), /needs protocolVersion 5/);
  });

  it('timer overflow attack: refuses reconnect delays and intervals a timer cannot hold or the protocol cannot carry', () => {
    const base = { url: 'ws://x/mqtt', clientId: 'b', topics: [{ filter: 'a', direction: 'in' as const }] };
    assert.throws(() => resolveBridgeConfig({ ...base, backoff: { maxMs: 3_000_000_000 } }), /backoff\.maxMs must be an integer from 500 to 2147483647, got 3000000000/);
    assert.throws(() => resolveBridgeConfig({ ...base, backoff: { initialMs: 0 } }), /backoff\.initialMs must be an integer from 1 to 2147483647, got 0/);
    assert.throws(() => resolveBridgeConfig({ ...base, backoff: { initialMs: 1000, maxMs: 10 } }), /backoff\.maxMs must be an integer from 1000/);
    assert.throws(() => resolveBridgeConfig({ ...base, keepAlive: 65_536 }), /keepAlive must be an integer from 0 to 65535/);
    assert.throws(() => resolveBridgeConfig({ ...base, sessionExpiryInterval: -1 }), /sessionExpiryInterval must be an integer from 0 to 4294967295/);
    assert.deepEqual(resolveBridgeConfig({ ...base, backoff: { initialMs: 1, maxMs: 2 ** 31 - 1 } }).backoff, { initialMs: 1, maxMs: 2 ** 31 - 1 });
  });
});
