import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { IPubackPacket, ISubackPacket } from 'mqtt-packet';
import { collect, expectSilence, startCoreBroker, type TestBroker } from '../../helpers/broker.js';
import { pace } from '../../helpers/wait.js';

describe('authorization hooks', () => {
  let b: TestBroker;
  afterEach(() => b.close());

  for (const mode of ['sync', 'async'] as const) {
    const answer = <T>(v: T): T | Promise<T> => (mode === 'sync' ? v : pace(5).then(() => v));

    it(`refuses a denied subscription with SUBACK 0x80 (3.1.1) / 0x87 (5.0), granting the others (${mode})`, async () => {
      b = await startCoreBroker({ authorizeSubscribe: (_c, filter) => answer(!filter.startsWith('secret')) });
      for (const protocolVersion of [4, 5] as const) {
        const raw = await b.raw();
        await raw.handshake({ protocolVersion });
        raw.sendPacket({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'open/#', qos: 1 }, { topic: 'secret/#', qos: 1 }] }, protocolVersion);
        assert.deepEqual(((await raw.next('suback')) as ISubackPacket).granted, [1, protocolVersion === 5 ? 0x87 : 0x80]);
        raw.destroy();
      }
    });

    it(`drops a denied publish: 3.1.1 acknowledges normally, 5.0 answers PUBACK 0x87; nothing is delivered (${mode})`, async () => {
      b = await startCoreBroker({ authorizePublish: (c, topic) => answer(!(topic.startsWith('ro/') && c.clientId !== 'writer')) });
      const sub = await b.client();
      await sub.subscribeAsync('ro/#');
      for (const protocolVersion of [4, 5] as const) {
        const raw = await b.raw();
        await raw.handshake({ protocolVersion });
        raw.sendPacket({ cmd: 'publish', topic: 'ro/x', payload: Buffer.from('no'), qos: 1, messageId: 9, dup: false, retain: false }, protocolVersion);
        const ack = (await raw.next('puback')) as IPubackPacket;
        assert.equal(ack.messageId, 9);
        assert.equal(ack.reasonCode ?? 0, protocolVersion === 5 ? 0x87 : 0);
        raw.destroy();
      }
      await expectSilence(sub);
      const writer = await b.client({ clientId: 'writer' });
      const got = collect(sub, 1);
      await writer.publishAsync('ro/x', 'yes', { qos: 1 });
      assert.equal((await got)[0]!.payload.toString(), 'yes');
    });
  }

  it('checks every delivery with the readAccess hook: a shared answer is asked once per message for a run of subscribers, the own one per subscriber', async () => {
    const asked: string[] = [];
    // Every reader but "picky" shares one check, which leaves r/personal to each session.
    const shared = (topic: string) => {
      asked.push(`shared ${topic}`);
      return topic === 'r/personal' ? undefined : !topic.endsWith('/hidden');
    };
    const check = (clientId: string) => ({
      shared,
      own: (topic: string) => {
        asked.push(`own ${clientId} ${topic}`);
        return clientId.endsWith('1');
      },
    });
    const picky = {
      shared: (topic: string) => topic.endsWith('/wanted'),
      own: () => assert.fail('picky has a shared answer for everything'),
    };
    b = await startCoreBroker({ readAccess: ({ clientId }) => (clientId === 'picky' ? picky : check(clientId)) });
    const readers = [await b.client({ clientId: 'reader-1' }), await b.client({ clientId: 'reader-2' }), await b.client({ clientId: 'picky' })];
    for (const r of readers) await r.subscribeAsync('r/#', { qos: 1 });
    const pub = await b.client();
    for (const topic of ['r/hidden', 'r/wanted', 'r/other', 'r/personal']) await pub.publishAsync(topic, topic, { qos: 1 });
    assert.deepEqual((await collect(readers[0]!, 3)).map((m) => m.topic), ['r/wanted', 'r/other', 'r/personal']);
    assert.deepEqual((await collect(readers[1]!, 2)).map((m) => m.topic), ['r/wanted', 'r/other']);
    assert.deepEqual((await collect(readers[2]!, 1)).map((m) => m.topic), ['r/wanted']);
    await expectSilence(readers[1]!);
    await expectSilence(readers[2]!);
    for (const topic of ['r/hidden', 'r/wanted', 'r/other', 'r/personal']) {
      assert.equal(asked.filter((a) => a === `shared ${topic}`).length, 1, `the shared check was asked once about ${topic}`);
    }
    assert.deepEqual(asked.filter((a) => a.startsWith('own')).sort(), ['own reader-1 r/personal', 'own reader-2 r/personal']);
  });

  it('keeps the order of a publisher’s messages while each waits for an asynchronous decision', async () => {
    let n = 0;
    b = await startCoreBroker({ authorizePublish: () => pace(++n % 3 === 0 ? 20 : 1).then(() => true) });
    const sub = await b.client();
    await sub.subscribeAsync('ord/#', { qos: 1 });
    const pub = await b.client();
    for (let i = 0; i < 30; i++) pub.publish(`ord/${i}`, String(i), { qos: (i % 2) as 0 | 1 });
    const got = await collect(sub, 30);
    assert.deepEqual(got.map((m) => Number(m.payload.toString())), [...Array(30).keys()]);
  });
});
