import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { collect, expectSilence, startCoreBroker, type TestBroker } from '../helpers/broker.js';
import { withoutTimerOverflow } from '../helpers/warnings.js';
import { until } from '../helpers/wait.js';

describe('sessions', () => {
  let b: TestBroker;
  beforeEach(async () => {
    b = await startCoreBroker();
  });
  afterEach(() => b.close());

  it('keeps subscriptions and queues QoS 1/2 messages of a persistent session while it is offline', async () => {
    const opts = { clientId: 'persist-1', clean: false };
    const sub = await b.connect(opts);
    await sub.subscribeAsync('p/#', { qos: 2 });
    await sub.endAsync();
    const pub = await b.client();
    await pub.publishAsync('p/1', 'one', { qos: 1 });
    await pub.publishAsync('p/2', 'two', { qos: 2 });
    await pub.publishAsync('p/0', 'zero', { qos: 0 });
    const back = await b.connect({ ...opts, manualConnect: false });
    assert.equal(back.connected, true);
    const got = await collect(back, 2);
    assert.deepEqual(got.map((m) => m.payload.toString()), ['one', 'two']);
    await expectSilence(back);
    await back.endAsync();
    const clean = await b.connect({ clientId: 'persist-1', clean: true });
    await clean.endAsync();
    await pub.endAsync();
  });

  it('answers Session Present 1 when resuming and 0 after a clean start [MQTT-3.2.2-2], [MQTT-3.2.2-3]', async () => {
    const raw1 = await b.raw();
    assert.equal((await raw1.handshake({ clientId: 'sp', clean: false })).sessionPresent, false);
    await raw1.drop();
    const raw2 = await b.raw();
    assert.equal((await raw2.handshake({ clientId: 'sp', clean: false })).sessionPresent, true);
    await raw2.drop();
    const raw3 = await b.raw();
    assert.equal((await raw3.handshake({ clientId: 'sp', clean: true })).sessionPresent, false);
    raw3.destroy();
  });

  it('discards the session of a clean-session client at disconnect [MQTT-3.1.2-6]', async () => {
    const sub = await b.connect({ clientId: 'clean-1', clean: true });
    await sub.subscribeAsync('c/t', { qos: 1 });
    await sub.endAsync();
    const pub = await b.client();
    await pub.publishAsync('c/t', 'x', { qos: 1 });
    const back = await b.connect({ clientId: 'clean-1', clean: false });
    await expectSilence(back);
    await Promise.all([back.endAsync(), pub.endAsync()]);
    const clean = await b.connect({ clientId: 'clean-1', clean: true });
    await clean.endAsync();
  });

  it('resends unacknowledged QoS 1 messages with DUP on reconnect [MQTT-4.4.0-1]', async () => {
    const raw = await b.raw();
    await raw.handshake({ clientId: 'dup-1', clean: false });
    raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'dup/t', qos: 1 }] });
    await raw.next('suback');
    const pub = await b.client();
    await pub.publishAsync('dup/t', 'again', { qos: 1 });
    const first = (await raw.next('publish')) as IPublishPacket;
    assert.equal(first.dup, false);
    await raw.drop(); // no PUBACK
    const raw2 = await b.raw();
    const ack = await raw2.handshake({ clientId: 'dup-1', clean: false });
    assert.equal(ack.sessionPresent, true);
    const again = (await raw2.next('publish')) as IPublishPacket;
    assert.equal(again.dup, true);
    assert.equal(again.messageId, first.messageId);
    assert.equal(again.payload.toString(), 'again');
    raw2.sendPacket({ cmd: 'puback', messageId: again.messageId! });
    raw2.sendPacket({ cmd: 'disconnect' });
    await raw2.expectClosed();
    const clean = await b.connect({ clientId: 'dup-1', clean: true });
    await Promise.all([clean.endAsync(), pub.endAsync()]);
  });

  it('resends PUBREL for a QoS 2 message that got PUBREC but no PUBCOMP [MQTT-4.4.0-1]', async () => {
    const raw = await b.raw();
    await raw.handshake({ clientId: 'rel-1', clean: false });
    raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rel/t', qos: 2 }] });
    await raw.next('suback');
    const pub = await b.client();
    await pub.publishAsync('rel/t', 'two', { qos: 2 });
    const p = (await raw.next('publish')) as IPublishPacket;
    raw.sendPacket({ cmd: 'pubrec', messageId: p.messageId! });
    await raw.next('pubrel');
    await raw.drop();
    const raw2 = await b.raw();
    await raw2.handshake({ clientId: 'rel-1', clean: false });
    const rel = await raw2.next('pubrel');
    assert.equal((rel as { messageId: number }).messageId, p.messageId);
    assert.equal(raw2.packets.filter((x) => x.cmd === 'publish').length, 0);
    raw2.sendPacket({ cmd: 'pubcomp', messageId: p.messageId! });
    raw2.destroy();
    const clean = await b.connect({ clientId: 'rel-1', clean: true });
    await Promise.all([clean.endAsync(), pub.endAsync()]);
  });

  it('ends a 5.0 session after its Session Expiry Interval [MQTT-3.1.2-23]', async () => {
    const opts = { protocolVersion: 5 as const, clientId: 'exp-1', clean: false, properties: { sessionExpiryInterval: 1 } };
    const sub = await b.connect(opts);
    await sub.subscribeAsync('exp/t', { qos: 1 });
    sub.stream.destroy();
    await b.offline('exp-1');
    const pub = await b.client();
    await pub.publishAsync('exp/t', 'queued', { qos: 1 });
    const session = b.broker.sessions.get('exp-1');
    assert.ok(session, 'kept after the disconnection');
    await until(() => !b.broker.sessions.has('exp-1'), 'the session to end', 3000);
    assert.ok(performance.now() - session.disconnectedAt >= 1000, 'not before its interval passed');
    const back = await b.connect(opts);
    await expectSilence(back);
    await Promise.all([back.endAsync(), pub.endAsync()]);
  });

  it('keeps a session whose DISCONNECT raised its Session Expiry from 99,999 s to 999,999,999 s: subscriptions and queued messages come back [MQTT-3.14.2-2]', () =>
    withoutTimerOverflow(async () => {
      const opts = { protocolVersion: 5 as const, clientId: 'long-1', clean: false, properties: { sessionExpiryInterval: 99_999 } };
      const sub = await b.connect(opts);
      await sub.subscribeAsync('long/#', { qos: 1 });
      await sub.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 999_999_999 } });
      const session = b.broker.sessions.get('long-1')!;
      await until(() => session.outlet === null);
      const pub = await b.client({ protocolVersion: 5 });
      await pub.publishAsync('long/queued', 'while away', { qos: 1 });
      assert.equal(b.broker.sessions.get('long-1'), session, 'the session outlived the disconnection');
      assert.equal(session.queue.length, 1);
      assert.equal(Math.round(session.endsAt - session.disconnectedAt), 999_999_999_000, 'it ends 999,999,999 s after the disconnection');
      const back = await b.connect({ ...opts, properties: {} });
      const [queued] = await collect(back, 1);
      assert.equal(queued!.payload.toString(), 'while away');
      await pub.publishAsync('long/live', 'the subscription is still there', { qos: 1 });
      const [live] = await collect(back, 1);
      assert.equal(live!.topic, 'long/live');
      await Promise.all([back.endAsync(), pub.endAsync()]);
    }));

  it('keeps sessions whose Session Expiry is beyond what one host timer holds, and never ends one of 0xFFFFFFFF [MQTT-3.1.2-23]', () =>
    withoutTimerOverflow(async () => {
      // 2,147,483 s is the last value in 2^31-1 ms; every larger one overflowed a per-session setTimeout.
      const intervals = [2_147_483, 2_147_484, 0xfffffffe, 0xffffffff];
      const opts = (expiry: number) => ({ protocolVersion: 5 as const, clientId: `edge-${expiry}`, clean: false, properties: { sessionExpiryInterval: expiry } });
      for (const expiry of intervals) {
        const sub = await b.connect(opts(expiry));
        await sub.subscribeAsync(`edge/${expiry}`, { qos: 1 });
        sub.stream.destroy();
      }
      const broker = b.broker;
      await until(() => intervals.every((e) => broker.sessions.get(`edge-${e}`)?.outlet === null));
      const pub = await b.client({ protocolVersion: 5 });
      for (const expiry of intervals) await pub.publishAsync(`edge/${expiry}`, String(expiry), { qos: 1 });
      // An overflowed timer would be one Node warns of (withoutTimerOverflow); the deadlines are as asked.
      for (const expiry of intervals) {
        const session = broker.sessions.get(`edge-${expiry}`);
        assert.ok(session, `session with expiry ${expiry} kept`);
        if (expiry === 0xffffffff) {
          assert.equal(session.endsAt, Infinity, 'no end at all');
          assert.equal(session.timerSlot, -1, 'nothing scheduled for it');
        } else {
          assert.equal(Math.round(session.endsAt - session.disconnectedAt), expiry * 1000);
        }
      }
      for (const expiry of intervals) {
        const back = await b.connect(opts(expiry));
        const [m] = await collect(back, 1);
        assert.equal(m!.payload.toString(), String(expiry));
        await back.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
      }
      await pub.endAsync();
    }));

  it('ends a 5.0 session at disconnect when its expiry is 0, even with Clean Start 0', async () => {
    const c = await b.connect({ protocolVersion: 5, clientId: 'exp-0', clean: false });
    await c.subscribeAsync('e0/t');
    await c.endAsync();
    await until(() => !b.broker.sessions.has('exp-0'), 'the session to end with its connection');
  });
});
