import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { collect, expectSilence, startCoreBroker, type TestBroker } from '../helpers/broker.js';
import { withoutTimerOverflow } from '../helpers/warnings.js';
import { until } from '../helpers/wait.js';

describe('will messages', () => {
  let b: TestBroker;
  beforeEach(async () => {
    b = await startCoreBroker();
  });
  afterEach(() => b.close());

  it('publishes the will when the connection is lost without DISCONNECT [MQTT-3.1.2-8]', async () => {
    const watcher = await b.client();
    await watcher.subscribeAsync('will/lost');
    const dying = await b.connect({ will: { topic: 'will/lost', payload: Buffer.from('gone'), qos: 1, retain: false } });
    const got = collect(watcher, 1);
    dying.stream.destroy();
    const [m] = await got;
    assert.equal(m!.payload.toString(), 'gone');
    await watcher.endAsync();
  });

  it('does not publish the will after a DISCONNECT [MQTT-3.14.4-3]', async () => {
    const watcher = await b.client();
    await watcher.subscribeAsync('will/clean');
    const leaving = await b.connect({ will: { topic: 'will/clean', payload: Buffer.from('x'), qos: 0, retain: false } });
    await leaving.endAsync();
    await b.offline(leaving.options.clientId!);
    await expectSilence(watcher);
    await watcher.endAsync();
  });

  it('publishes the will of a 5.0 client that disconnects with reason 0x04', async () => {
    const watcher = await b.client();
    await watcher.subscribeAsync('will/04');
    const leaving = await b.connect({ protocolVersion: 5, will: { topic: 'will/04', payload: Buffer.from('asked'), qos: 0, retain: false } });
    const got = collect(watcher, 1);
    leaving.end(false, { reasonCode: 0x04 });
    assert.equal((await got)[0]!.payload.toString(), 'asked');
    await watcher.endAsync();
  });

  it('publishes the will when the broker closes the connection for a protocol error', async () => {
    const watcher = await b.client();
    await watcher.subscribeAsync('will/err');
    const raw = await b.raw();
    await raw.handshake({ will: { topic: 'will/err', payload: Buffer.from('bad'), qos: 0, retain: false } });
    const got = collect(watcher, 1);
    raw.send([0x30, 3, 0, 1, 0x23]); // PUBLISH to "#"
    await raw.expectClosed();
    assert.equal((await got)[0]!.payload.toString(), 'bad');
    await watcher.endAsync();
  });

  it('retains a will published with the will retain flag', async () => {
    const dying = await b.connect({ will: { topic: 'will/retained', payload: Buffer.from('last words'), qos: 1, retain: true } });
    dying.stream.destroy();
    await b.offline(dying.options.clientId!);
    const late = await b.client();
    const got = collect(late, 1);
    await late.subscribeAsync('will/retained');
    const [m] = await got;
    assert.equal(m!.payload.toString(), 'last words');
    assert.equal(m!.packet.retain, true);
    const cleaner = await b.client();
    await cleaner.publishAsync('will/retained', '', { retain: true, qos: 1 });
    await Promise.all([late.endAsync(), cleaner.endAsync()]);
  });

  it('holds a will whose Will Delay is beyond what one host timer holds while the session lives, and drops it when the client comes back [MQTT-3.1.3-9]', () =>
    withoutTimerOverflow(async () => {
      const watcher = await b.client();
      await watcher.subscribeAsync('will/long/#');
      const delays = [2_147_484, 0xffffffff];
      const opts = (willDelay: number) => ({
        protocolVersion: 5 as const,
        clientId: `will-long-${willDelay}`,
        clean: false,
        properties: { sessionExpiryInterval: 0xffffffff },
        will: { topic: `will/long/${willDelay}`, payload: Buffer.from('too early'), qos: 1 as const, retain: false, properties: { willDelayInterval: willDelay } },
      });
      for (const willDelay of delays) (await b.connect(opts(willDelay))).stream.destroy();
      const broker = b.broker;
      await until(() => delays.every((d) => broker.sessions.get(`will-long-${d}`)?.outlet === null));
      // An overflowed timer would be one Node warns of (withoutTimerOverflow).
      await expectSilence(watcher);
      for (const willDelay of delays) {
        const session = broker.sessions.get(`will-long-${willDelay}`)!;
        assert.equal(Math.round(session.willAt - session.disconnectedAt), willDelay * 1000, `the will of ${willDelay} s waits that long`);
        const back = await b.connect(opts(willDelay));
        assert.equal(session.willAt, Infinity, 'coming back cancelled it');
        await back.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
      }
      await expectSilence(watcher);
      await watcher.endAsync();
    }));

  it('publishes a will whose Will Delay outlasts its session when the session ends [MQTT-3.1.3-9], its Message Expiry of 0xFFFFFFFF s intact', () =>
    withoutTimerOverflow(async () => {
      const watcher = await b.client({ protocolVersion: 5 });
      await watcher.subscribeAsync('will/outlasted', { qos: 1 });
      const dying = await b.connect({
        protocolVersion: 5,
        clientId: 'will-outlasted',
        clean: false,
        properties: { sessionExpiryInterval: 1 },
        will: {
          topic: 'will/outlasted',
          payload: Buffer.from('session over'),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 0xffffffff, messageExpiryInterval: 0xffffffff },
        },
      });
      const got = collect(watcher, 1, 4000);
      const start = Date.now();
      dying.stream.destroy();
      const [m] = await got;
      assert.ok(Date.now() - start >= 900, 'it went when the 1 s session ended, not before');
      assert.equal(m!.payload.toString(), 'session over');
      assert.equal(m!.packet.properties?.messageExpiryInterval, 0xffffffff);
      assert.equal(b.broker.sessions.has('will-outlasted'), false);
      await watcher.endAsync();
    }));

  it('publishes a will with Will Delay 0 at once', async () => {
    const watcher = await b.client();
    await watcher.subscribeAsync('will/zero');
    const dying = await b.connect({
      protocolVersion: 5,
      clientId: 'will-zero',
      clean: false,
      properties: { sessionExpiryInterval: 60 },
      will: { topic: 'will/zero', payload: Buffer.from('now'), qos: 0, retain: false, properties: { willDelayInterval: 0 } },
    });
    const got = collect(watcher, 1);
    dying.stream.destroy();
    assert.equal((await got)[0]!.payload.toString(), 'now');
    assert.ok(b.broker.sessions.has('will-zero'), 'the session itself stays');
    const cleanup = await b.connect({ protocolVersion: 5, clientId: 'will-zero', clean: true });
    await Promise.all([cleanup.endAsync(), watcher.endAsync()]);
  });

  it('delays a 5.0 will by its Will Delay Interval and cancels it when the client comes back in time', async () => {
    const watcher = await b.client();
    await watcher.subscribeAsync('will/delay');
    const opts = {
      protocolVersion: 5 as const,
      clientId: 'will-delay',
      clean: false,
      properties: { sessionExpiryInterval: 60 },
      will: { topic: 'will/delay', payload: Buffer.from('late'), qos: 0 as const, retain: false, properties: { willDelayInterval: 1 } },
    };
    const first = await b.connect(opts);
    first.stream.destroy();
    await b.offline(opts.clientId);
    const back = await b.connect(opts);
    assert.equal(b.broker.sessions.get(opts.clientId)!.willAt, Infinity, 'coming back cancelled the will');
    await expectSilence(watcher);
    back.stream.destroy();
    const got = collect(watcher, 1, 3000);
    const start = Date.now();
    assert.equal((await got)[0]!.payload.toString(), 'late');
    assert.ok(Date.now() - start >= 800, 'the will waited for its delay');
    const cleanup = await b.connect({ protocolVersion: 5, clientId: 'will-delay', clean: true });
    await cleanup.endAsync();
    await watcher.endAsync();
  });
});
