import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { collect, expectSilence, startCoreBroker, type TestBroker } from '../helpers/broker.js';

describe('retained messages', () => {
  let b: TestBroker;
  beforeEach(async () => {
    b = await startCoreBroker();
  });
  afterEach(() => b.close());

  it('sends the retained message to a new subscriber with RETAIN set [MQTT-3.3.1-6], [MQTT-3.3.1-8]', async () => {
    const pub = await b.client();
    await pub.publishAsync('r/a', 'first', { retain: true, qos: 1 });
    const sub = await b.client();
    const got = collect(sub, 1);
    await sub.subscribeAsync('r/+');
    const [m] = await got;
    assert.equal(m!.payload.toString(), 'first');
    assert.equal(m!.packet.retain, true);
    await Promise.all([pub.endAsync(), sub.endAsync()]);
  });

  it('replaces the retained message of a topic with the newer one [MQTT-3.3.1-5]', async () => {
    const pub = await b.client();
    await pub.publishAsync('r/b', 'old', { retain: true, qos: 1 });
    await pub.publishAsync('r/b', 'new', { retain: true, qos: 1 });
    const sub = await b.client();
    const got = collect(sub, 1);
    await sub.subscribeAsync('r/b');
    assert.equal((await got)[0]!.payload.toString(), 'new');
    await expectSilence(sub);
    await Promise.all([pub.endAsync(), sub.endAsync()]);
  });

  it('deletes the retained message on an empty retained payload [MQTT-3.3.1-10], and still forwards it [MQTT-3.3.1-11]', async () => {
    const pub = await b.client();
    await pub.publishAsync('r/c', 'x', { retain: true, qos: 1 });
    const live = await b.client();
    await live.subscribeAsync('r/c');
    const forwarded = collect(live, 2);
    await pub.publishAsync('r/c', '', { retain: true, qos: 1 });
    const msgs = await forwarded;
    assert.equal(msgs[1]!.payload.length, 0);
    const sub = await b.client();
    await sub.subscribeAsync('r/c');
    await expectSilence(sub);
    await Promise.all([pub.endAsync(), sub.endAsync(), live.endAsync()]);
  });

  it('clears RETAIN on normal delivery to existing subscribers [MQTT-3.3.1-9]', async () => {
    const sub = await b.client();
    await sub.subscribeAsync('r/d');
    const pub = await b.client();
    const got = collect(sub, 1);
    pub.publish('r/d', 'x', { retain: true });
    assert.equal((await got)[0]!.packet.retain, false);
    await pub.publishAsync('r/d', '', { retain: true, qos: 1 });
    await Promise.all([pub.endAsync(), sub.endAsync()]);
  });

  it('keeps RETAIN as published for retain-as-published subscriptions (5.0) [MQTT-3.3.1-12]', async () => {
    const sub = await b.client({ protocolVersion: 5 });
    await sub.subscribeAsync('r/e', { qos: 0, rap: true });
    const pub = await b.client({ protocolVersion: 5 });
    const got = collect(sub, 1);
    pub.publish('r/e', 'x', { retain: true });
    assert.equal((await got)[0]!.packet.retain, true);
    await Promise.all([pub.endAsync(), sub.endAsync()]);
  });

  it('sends retained messages by retain handling: 0 always, 1 only for a new subscription, 2 never (5.0) [MQTT-3.3.1-9..11]', async () => {
    const pub = await b.client({ protocolVersion: 5 });
    await pub.publishAsync('rh/t', 'kept', { retain: true, qos: 1 });
    const sub = await b.client({ protocolVersion: 5 });
    let got = collect(sub, 1);
    await sub.subscribeAsync('rh/t', { qos: 0, rh: 1 });
    await got;
    await sub.subscribeAsync('rh/t', { qos: 0, rh: 1 });
    await expectSilence(sub);
    got = collect(sub, 1);
    await sub.subscribeAsync('rh/t', { qos: 0, rh: 0 });
    await got;
    await sub.subscribeAsync('rh/+', { qos: 0, rh: 2 });
    await expectSilence(sub);
    await Promise.all([pub.endAsync(), sub.endAsync()]);
  });

  it('matches retained messages by wildcard but not $ topics by a leading wildcard [MQTT-4.7.2-1]', async () => {
    const pub = await b.client();
    for (const t of ['w/1', 'w/2/x', '$w/hidden']) await pub.publishAsync(t, t, { retain: true, qos: 1 });
    const sub = await b.client();
    const got = collect(sub, 2);
    await sub.subscribeAsync('w/#');
    assert.deepEqual((await got).map((m) => m.topic).sort(), ['w/1', 'w/2/x']);
    const hash = await b.client();
    await hash.subscribeAsync('+/hidden');
    await expectSilence(hash);
    await Promise.all([pub.endAsync(), sub.endAsync(), hash.endAsync()]);
  });
});
