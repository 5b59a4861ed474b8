import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { IConnackPacket, IDisconnectPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet';
import { collect, expectSilence, startCoreBroker, type TestBroker } from '../../helpers/broker.js';
import { until } from '../../helpers/wait.js';

describe('MQTT 5.0 features', () => {
  let b: TestBroker;
  afterEach(() => b.close());

  it('assigns topic aliases to a client that allows them, then sends the topic as an empty name [MQTT-3.3.2-11]', async () => {
    b = await startCoreBroker();
    const raw = await b.raw();
    await raw.handshake({ protocolVersion: 5, properties: { topicAliasMaximum: 2 } });
    raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'alias/#', qos: 0 }] }, 5);
    await raw.next('suback');
    const pub = await b.client({ protocolVersion: 5 });
    for (const t of ['alias/a', 'alias/a', 'alias/b', 'alias/c', 'alias/c', 'alias/b']) await pub.publishAsync(t, t, { qos: 1 });
    const got: IPublishPacket[] = [];
    for (let i = 0; i < 6; i++) got.push((await raw.next('publish')) as IPublishPacket);
    const seen = got.map((p) => [p.topic, p.properties?.topicAlias, p.payload.toString()]);
    assert.deepEqual(seen, [
      ['alias/a', 1, 'alias/a'],
      ['', 1, 'alias/a'],
      ['alias/b', 2, 'alias/b'],
      ['alias/c', undefined, 'alias/c'],
      ['alias/c', undefined, 'alias/c'],
      ['', 2, 'alias/b'],
    ]);
    raw.destroy();
    await pub.endAsync();
  });

  it('sends no topic alias to a client that did not allow any (Topic Alias Maximum absent)', async () => {
    b = await startCoreBroker();
    const sub = await b.client({ protocolVersion: 5 });
    await sub.subscribeAsync('na/t');
    const got = collect(sub, 2);
    sub.publish('na/t', '1');
    sub.publish('na/t', '2');
    for (const m of await got) {
      assert.equal(m.packet.properties?.topicAlias, undefined);
      assert.equal(m.topic, 'na/t');
    }
  });

  it('disconnects a client exceeding the broker Receive Maximum with 0x93 [MQTT-3.3.4-9]', async () => {
    b = await startCoreBroker({ receiveMaximum: 2 });
    const raw = await b.raw();
    const ack = (await raw.handshake({ protocolVersion: 5 })) as IConnackPacket;
    assert.equal(ack.properties?.receiveMaximum, 2);
    for (const id of [1, 2, 3]) {
      raw.sendPacket({ cmd: 'publish', topic: 'rm/t', payload: Buffer.from('x'), qos: 2, messageId: id, dup: false, retain: false }, 5);
    }
    assert.equal(((await raw.next('disconnect')) as IDisconnectPacket).reasonCode, 0x93);
    await raw.expectClosed();
  });

  it('returns Response Information when asked (Request Response Information 1), never otherwise', async () => {
    b = await startCoreBroker();
    const asked = await b.raw();
    const ack = (await asked.handshake({ protocolVersion: 5, clientId: 'rr', properties: { requestResponseInformation: true } })) as IConnackPacket;
    assert.equal(ack.properties?.responseInformation, 'response/rr/');
    const notAsked = await b.raw();
    const ack2 = (await notAsked.handshake({ protocolVersion: 5, clientId: 'rr2' })) as IConnackPacket;
    assert.equal(ack2.properties?.responseInformation, undefined);
  });

  it('forwards Response Topic and Correlation Data unchanged for request/response', async () => {
    b = await startCoreBroker();
    const responder = await b.client({ protocolVersion: 5 });
    await responder.subscribeAsync('svc/req');
    responder.on('message', (_t, payload, packet) => {
      responder.publish(packet.properties!.responseTopic!, `re:${payload}`, { properties: { correlationData: packet.properties!.correlationData! } });
    });
    const requester = await b.client({ protocolVersion: 5 });
    await requester.subscribeAsync('svc/resp/1');
    const got = collect(requester, 1);
    requester.publish('svc/req', 'ping', { properties: { responseTopic: 'svc/resp/1', correlationData: Buffer.from([1, 2, 3]) } });
    const [m] = await got;
    assert.equal(m!.payload.toString(), 're:ping');
    assert.deepEqual([...m!.packet.properties!.correlationData!], [1, 2, 3]);
  });

  it('announces unavailable features in CONNACK and refuses their use: 0xA2 wildcards, 0x9E shared, 0xA1 identifiers', async () => {
    b = await startCoreBroker({ wildcardSubscriptions: false, sharedSubscriptions: false, subscriptionIdentifiers: false });
    const raw = await b.raw();
    const ack = (await raw.handshake({ protocolVersion: 5 })) as IConnackPacket;
    assert.equal(ack.properties?.wildcardSubscriptionAvailable, false);
    assert.equal(ack.properties?.sharedSubscriptionAvailable, false);
    assert.equal(ack.properties?.subscriptionIdentifiersAvailable, false);
    raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/+', qos: 0 }, { topic: '$share/g/a', qos: 0 }, { topic: 'a/b', qos: 1 }] }, 5);
    assert.deepEqual(((await raw.next('suback')) as ISubackPacket).granted, [0xa2, 0x9e, 1]);
    raw.sendPacket({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'x', qos: 0 }], properties: { subscriptionIdentifier: 5 } }, 5);
    assert.equal(((await raw.next('disconnect')) as IDisconnectPacket).reasonCode, 0xa1);
  });

  it('leaves reason strings off SUBACK when Request Problem Information is 0 [MQTT-3.1.2-29]', async () => {
    b = await startCoreBroker();
    for (const requestProblemInformation of [true, false]) {
      const raw = await b.raw();
      await raw.handshake({ protocolVersion: 5, properties: { requestProblemInformation } });
      raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'bad/#/x', qos: 0 }] }, 5);
      const ack = (await raw.next('suback')) as ISubackPacket;
      assert.equal(ack.granted[0], 0x8f);
      assert.equal(typeof ack.properties?.reasonString === 'string', requestProblemInformation);
      raw.destroy();
    }
  });

  it('redirects every client with CONNACK 0x9C / 0x9D and a Server Reference', async () => {
    for (const permanent of [false, true]) {
      b = await startCoreBroker({ redirect: { serverReference: 'other.example:1883', permanent } });
      const raw = await b.raw();
      const ack = (await raw.handshake({ protocolVersion: 5 })) as IConnackPacket;
      assert.equal(ack.reasonCode, permanent ? 0x9d : 0x9c);
      assert.equal(ack.properties?.serverReference, 'other.example:1883');
      await raw.expectClosed();
      if (!permanent) await b.close();
    }
  });

  it('decrements Message Expiry Interval by the time a message waited, and drops it once expired [MQTT-3.3.2-6], [MQTT-3.3.2-5]', async () => {
    b = await startCoreBroker();
    const opts = { protocolVersion: 5 as const, clientId: 'exp-sub', clean: false, properties: { sessionExpiryInterval: 60 } };
    const sub = await b.client(opts);
    await sub.subscribeAsync('mx/#', { qos: 1 });
    await sub.endAsync();
    const pub = await b.client({ protocolVersion: 5 });
    await pub.publishAsync('mx/long', 'stays', { qos: 1, properties: { messageExpiryInterval: 10 } });
    await pub.publishAsync('mx/short', 'goes', { qos: 1, properties: { messageExpiryInterval: 1 } });
    const short = [...b.broker.sessions.get('exp-sub')!.queue].find((d) => d.message!.topic() === 'mx/short')!.message!;
    await until(() => short.expired(performance.now()), 'mx/short to expire while it waits');
    const back = await b.client(opts);
    const [m] = await collect(back, 1);
    assert.equal(m!.topic, 'mx/long');
    const left = m!.packet.properties?.messageExpiryInterval;
    assert.ok(left !== undefined && left <= 9 && left >= 8, `expiry left ${left} after waiting over a second`);
    await back.endAsync();
    const clean = await b.client({ protocolVersion: 5, clientId: 'exp-sub', clean: true });
    await clean.endAsync();
  });

  it('forwards a Message Expiry Interval of any size unchanged; 0 reaches only those it is sent to at once [MQTT-3.3.2-5], [MQTT-3.3.2-6]', async () => {
    b = await startCoreBroker();
    const intervals = [0, 2_147_483, 2_147_484, 0xffffffff];
    const online = await b.client({ protocolVersion: 5 });
    await online.subscribeAsync('mxe/#', { qos: 1 });
    const awayOpts = { protocolVersion: 5 as const, clientId: 'mxe-away', clean: false, properties: { sessionExpiryInterval: 60 } };
    const away = await b.client(awayOpts);
    await away.subscribeAsync('mxe/#', { qos: 1 });
    await away.endAsync();
    const pub = await b.client({ protocolVersion: 5 });
    for (const interval of intervals) {
      await pub.publishAsync(`mxe/${interval}`, String(interval), { qos: 1, properties: { messageExpiryInterval: interval } });
      await pub.publishAsync(`mxe/retained/${interval}`, String(interval), { qos: 1, retain: true, properties: { messageExpiryInterval: interval } });
    }
    const expiryOf = (m: { packet: IPublishPacket }): number | undefined => m.packet.properties?.messageExpiryInterval;
    // Sent the moment it arrived: no time waited, the interval as received.
    const live = await collect(online, intervals.length * 2);
    assert.deepEqual(
      live.map((m) => [m.topic, expiryOf(m)]),
      intervals.flatMap((i) => [[`mxe/${i}`, i], [`mxe/retained/${i}`, i]]),
    );
    // Queued: the 0 s message expired before its delivery could start; the others wait, less than a second used.
    const back = await b.client(awayOpts);
    const queued = await collect(back, (intervals.length - 1) * 2);
    assert.deepEqual(queued.map((m) => m.topic), intervals.slice(1).flatMap((i) => [`mxe/${i}`, `mxe/retained/${i}`]));
    for (const m of queued) {
      const sent = Number(m.payload.toString());
      assert.ok(expiryOf(m)! <= sent && expiryOf(m)! >= sent - 2, `${m.topic}: ${expiryOf(m)} left of ${sent}`);
    }
    // Retained: a later subscriber gets every retained message but the expired one.
    const late = await b.client({ protocolVersion: 5 });
    const retained = collect(late, intervals.length - 1);
    await late.subscribeAsync('mxe/retained/#', { qos: 1 });
    assert.deepEqual((await retained).map((m) => m.topic).sort(), intervals.slice(1).map((i) => `mxe/retained/${i}`).sort());
    await expectSilence(late);
    for (const interval of intervals) await pub.publishAsync(`mxe/retained/${interval}`, '', { qos: 1, retain: true });
    await back.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
  });

  it('lets DISCONNECT change the session expiry, ending the session when it sets 0', async () => {
    b = await startCoreBroker();
    const c = await b.client({ protocolVersion: 5, clientId: 'dx', clean: false, properties: { sessionExpiryInterval: 60 } });
    await c.subscribeAsync('dx/t');
    c.end(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    await until(() => !b.broker.sessions.has('dx'), 'the session to end with its connection');
  });

  it('closes with 0x82 a client whose DISCONNECT sets a session expiry after CONNECT set 0 (§3.14.2.2.2)', async () => {
    b = await startCoreBroker();
    const raw = await b.raw();
    await raw.handshake({ protocolVersion: 5 });
    raw.sendPacket({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 30 } }, 5);
    assert.equal(((await raw.next('disconnect')) as IDisconnectPacket).reasonCode, 0x82);
  });

  it('does not send a client a packet larger than its Maximum Packet Size, and carries on [MQTT-3.1.2-25]', async () => {
    b = await startCoreBroker();
    const small = await b.client({ protocolVersion: 5, properties: { maximumPacketSize: 100 } });
    await small.subscribeAsync('mps/#', { qos: 1 });
    const pub = await b.client({ protocolVersion: 5 });
    await pub.publishAsync('mps/big', Buffer.alloc(200), { qos: 1 });
    await pub.publishAsync('mps/small', 'ok', { qos: 1 });
    const [m] = await collect(small, 1);
    assert.equal(m!.topic, 'mps/small');
  });
});
