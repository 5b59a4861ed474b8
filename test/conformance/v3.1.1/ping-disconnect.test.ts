// MQTT 3.1.1 conformance, §3.12 PINGREQ, §3.13 PINGRESP and §3.14 DISCONNECT.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type ServerTestBroker, startBroker } from '../../helpers/broker.js';
import { pace, Peer, publishBytes, T, watch, withBroker } from './helpers.js';

describe('MQTT 3.1.1 §3.12 PINGREQ / §3.13 PINGRESP', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  it('[MQTT-3.12.4-1] answers PINGREQ with PINGRESP', async () => {
    const p = await Peer.connect(b);
    p.send([0xc0, 0]);
    await p.next('pingresp');
    assert.deepEqual([...p.of(T.PINGRESP)[0]!.raw], [0xd0, 0]);
  });

  it('[MQTT-3.12.4-1] answers every one of several PINGREQs sent together, one PINGRESP each', async () => {
    const p = await Peer.connect(b);
    p.send([0xc0, 0, 0xc0, 0, 0xc0, 0, 0xc0, 0, 0xc0, 0]);
    for (let i = 0; i < 5; i++) await p.next('pingresp');
    await p.expectNo('pingresp');
    assert.equal(p.of(T.PINGRESP).length, 5);
  });

  it('[MQTT-3.12.4-1] answers PINGREQ while messages are flowing to the client', async () => {
    const s = await Peer.connect(b);
    await s.subscribe('ping/t', 1);
    const p = await Peer.connect(b);
    for (let i = 0; i < 20; i++) p.publish('ping/t', String(i), { qos: 1, id: i + 1 });
    s.send([0xc0, 0]);
    await s.next('pingresp');
  });

  it('[MQTT-3.12.4-1] answers a PINGREQ that arrives split across two TCP segments', async () => {
    const p = await Peer.connect(b);
    p.send([0xc0]);
    await pace(50);
    p.send([0x00]);
    await p.next('pingresp');
  });
});

describe('MQTT 3.1.1 §3.14 DISCONNECT', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  for (const header of [0xe1, 0xe2, 0xe4, 0xe8, 0xef]) {
    it(`[MQTT-3.14.1-1] disconnects a client whose DISCONNECT has reserved bits set (header 0x${header.toString(16)})`, async () => {
      const p = await Peer.connect(b);
      p.send([header, 0]);
      await p.expectClosed();
    });
  }

  it('[MQTT-3.14.1-1] treats a DISCONNECT with reserved bits set as a protocol violation, not a DISCONNECT: the will is published', async () => {
    const w = await watch(b, 'dis/will');
    const p = await Peer.connect(b, { will: { topic: 'dis/will', payload: Buffer.from('bad disconnect'), qos: 1, retain: false } });
    p.send([0xe1, 0]);
    await p.expectClosed();
    assert.equal((await w.message()).payload.toString(), 'bad disconnect');
  });

  it('[MQTT-3.14.4-3] discards the will without publishing it on DISCONNECT', async () => {
    const w = await watch(b, 'dis/#');
    const p = await Peer.connect(b, { will: { topic: 'dis/gone', payload: Buffer.from('x'), qos: 2, retain: true } });
    await p.disconnect();
    await w.expectNo('publish');
    const late = await Peer.connect(b);
    await late.subscribe('dis/#', 2);
    await late.expectNo('publish');
  });

  it('[MQTT-3.14.4-3] discards the will on DISCONNECT also for a persistent session, which then never publishes it', async () => {
    const w = await watch(b, 'dis/p');
    const p = await Peer.connect(b, { clientId: 'dis-persist', clean: false, will: { topic: 'dis/p', payload: Buffer.from('x'), qos: 1, retain: false } });
    await p.disconnect();
    const again = await Peer.connect(b, { clientId: 'dis-persist', clean: false });
    await again.drop();
    await w.expectNo('publish');
  });

  it('[MQTT-3.14.4-3] discards the will on a DISCONNECT that arrives in the same segment as other packets', async () => {
    const w = await watch(b, 'dis/batch');
    const p = await Peer.connect(b, { will: { topic: 'dis/batch', payload: Buffer.from('will'), qos: 0, retain: false } });
    p.send(Buffer.concat([Buffer.from([0x30, 11, 0, 9, ...Buffer.from('dis/batch')]), Buffer.from([0xe0, 0])]));
    await p.expectClosed();
    const m = await w.message();
    assert.equal(m.payload.length, 0, 'the PUBLISH before DISCONNECT is routed');
    await w.expectNo('publish');
  });

  it('[MQTT-3.14.4-3] discards the will on a DISCONNECT that follows a PUBLISH still waiting for authorization', () =>
    withBroker({ authorizePublish: () => pace(50).then(() => true) }, async (b1) => {
      const w = await watch(b1, 'dis/held/#');
      const p = await Peer.connect(b1, { will: { topic: 'dis/held/will', payload: Buffer.from('will'), qos: 0, retain: false } });
      p.send(Buffer.concat([publishBytes('dis/held/msg', 'routed', { qos: 1, id: 1 }), Buffer.from([0xe0, 0])]));
      await p.expectClosed();
      const m = await w.message();
      assert.equal(m.topic, 'dis/held/msg');
      await w.expectNo('publish');
    }));

  it('[MQTT-3.14.4-3] publishes the will, not discarding it, when the connection drops while a PUBLISH waits for authorization', () =>
    withBroker({ authorizePublish: () => pace(50).then(() => true) }, async (b1) => {
      const w = await watch(b1, 'dis/drop/#');
      const p = await Peer.connect(b1, { will: { topic: 'dis/drop/will', payload: Buffer.from('will'), qos: 0, retain: false } });
      p.publish('dis/drop/msg', 'pending', { qos: 1, id: 1 });
      await p.drop();
      const m = await w.message();
      assert.equal(m.topic, 'dis/drop/will');
    }));
});
