import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IDisconnectPacket } from 'mqtt-packet';
import { collect, type ServerTestBroker, startBroker } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';

/**
 * Every defect the fuzzer found, as the bytes that found it: each must now be answered as the
 * specification says, without an internal error, while the broker keeps serving.
 */
describe('fuzzer findings', () => {
  let b: ServerTestBroker;
  before(async () => {
    b = await startBroker();
  });
  after(() => b.close());

  /** Sends `hex` on a fresh connection; resolves with what came back once the broker closed it. */
  async function closedAfter(hex: string, version: 4 | 5): Promise<string[]> {
    const internal = b.broker.metrics.internalErrors;
    const raw = (await b.raw()).version(version);
    raw.send(Buffer.from(hex.replace(/\s/g, ''), 'hex'));
    await raw.expectClosed();
    assert.equal(b.broker.metrics.internalErrors, internal, 'no internal error');
    return raw.packets.map((p) => (p.cmd === 'disconnect' ? `disconnect 0x${((p as IDisconnectPacket).reasonCode ?? 0).toString(16)}` : p.cmd));
  }

  it('a second CONNECT naming an unsupported protocol level (0xfe) is a Protocol Error, not an internal error [MQTT-3.1.0-2] (seed 1001)', async () => {
    // CONNECT 3.1.1 "fz0", PINGREQ, then a CONNECT of level 0xfe with user name and password, then more.
    const found = '100f00044d515454040000000003667a30 c000 101700044d515454fec000000003667a30000466757a7a0000 30060004667a2f61 c000';
    assert.deepEqual(await closedAfter(found, 4), ['connack', 'pingresp']);
    const v5 = '1010 00044d515454 05 02 0000 00 0003667a31 100f00044d515454fe0000000003667a32';
    assert.deepEqual(await closedAfter(v5, 5), ['connack', 'disconnect 0x82']);
  });

  for (const size of [3000, 100]) {
    it(`a QoS 0 message of ${size} bytes with forwarded properties frees their arena block once sent to a subscriber that holds nothing else (fuzz sample seed 5, case 597)`, async () => {
      // Messages over 2 KiB are written by reference: the outbox's reference outlived the message's other holders
      // and its last release freed the message block only, leaking the block of its user properties every time.
      const core = b.broker.core;
      const sub = await b.client({ protocolVersion: 5 });
      await sub.subscribeAsync('leak/#', { qos: 1 });
      const pub = await b.client({ protocolVersion: 5 });
      const before = core.arenaStats().liveHandles;
      const got = collect(sub, 3);
      for (let i = 0; i < 3; i++) pub.publish('leak/t', Buffer.alloc(size, i), { qos: 0, properties: { userProperties: { k: 'v' }, correlationData: Buffer.from('c') } });
      const messages = await got;
      assert.deepEqual({ ...messages[2]!.packet.properties?.userProperties }, { k: 'v' });
      await until(() => core.arenaStats().liveHandles <= before, 'the sent messages to be released');
      assert.equal(core.arenaStats().liveHandles, before, 'every message block and properties block is released');
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    });
  }
});
