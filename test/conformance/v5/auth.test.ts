// MQTT 5.0 conformance: the AUTH packet (§3.15) and enhanced authentication (§4.12), with the
// broker's built-in SCRAM-SHA-256 method and an independent client-side SCRAM (test/helpers/scram-client.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scramCredentials, scramSha256 } from '../../../host/core/auth/scram.js';
import { ScramClient } from '../../helpers/scram-client.js';
import {
  type Auth,
  auth,
  type Bytes,
  client,
  type Connack,
  connect,
  decodeAuth,
  decodeConnack,
  disconnect,
  hex,
  P,
  peer,
  type Peer,
  pingreq,
  prop,
  propOf,
  publish,
  subOpts,
  subscribe,
  T,
  useBroker,
  userProps,
} from './helpers.js';
import { type TestBroker } from '../../helpers/broker.js';

const METHOD = 'SCRAM-SHA-256';
const PASSWORD = 'wonderland';
const alice = scramCredentials(PASSWORD, 4096);

const AUTH_REASONS = [0x00, 0x18, 0x19];

/** A broker that knows one SCRAM user, alice. */
const scramBroker = (): (() => TestBroker) => useBroker({ authMethods: [scramSha256((name) => (name === 'alice' ? alice : undefined))] });

interface Started {
  c: Peer;
  scram: ScramClient;
  challenge: Auth;
}

/** CONNECT with the SCRAM method and client-first data; returns the server's first AUTH. */
async function startScram(b: TestBroker, o: { user?: string; password?: string; props?: Bytes[]; will?: { topic: string; payload: string } } = {}): Promise<Started> {
  const c = await peer(b);
  const scram = new ScramClient(o.user ?? 'alice', o.password ?? PASSWORD);
  c.send(connect({ props: [prop.authMethod(METHOD), prop.authData(scram.first()), ...(o.props ?? [])], will: o.will }));
  const challenge = decodeAuth(await c.next(T.AUTH));
  return { c, scram, challenge };
}

/** The client's answer to the server's challenge: AUTH 0x18 with the client-final data. */
function answer(s: Started): Buffer {
  const data = propOf<Buffer>(s.challenge.props, P.AuthenticationData)!;
  return auth(0x18, [prop.authMethod(METHOD), prop.authData(s.scram.final(data))]);
}

/** A client connected through the whole SCRAM exchange. */
async function scramClient(b: TestBroker, o: Parameters<typeof startScram>[1] = {}): Promise<Peer & { connack: Connack }> {
  const s = await startScram(b, o);
  s.c.send(answer(s));
  const connack = decodeConnack(await s.c.next(T.CONNACK));
  assert.equal(connack.reason, 0x00, `CONNACK ${hex(connack.reason)}`);
  return Object.assign(s.c, { connack });
}

/** Refused before CONNACK 0x00: one CONNACK with `reason`, Session Present 0, nothing else, closed. */
async function expectRefused(c: Peer, reasons: number | number[]): Promise<Connack> {
  const ack = decodeConnack(await c.next(T.CONNACK));
  const allowed = typeof reasons === 'number' ? [reasons] : reasons;
  assert.ok(allowed.includes(ack.reason), `CONNACK ${hex(ack.reason)}, expected ${allowed.map(hex).join(' or ')}`);
  assert.equal(ack.sessionPresent, false);
  await c.expectClosed();
  c.assertNothingAfter(T.CONNACK);
  assert.ok(!c.log.some((f) => f.type === T.DISCONNECT), 'no DISCONNECT before a successful CONNACK [MQTT-3.14.0-1]');
  c.checkWire();
  return ack;
}

describe('MQTT 5.0 §3.15 AUTH and §4.12 enhanced authentication (SCRAM-SHA-256)', () => {
  const broker = scramBroker();

  it('[MQTT-4.12.0-2] [MQTT-4.12.0-5] asks for more with AUTH 0x18 naming the CONNECT method, and accepts with a CONNACK 0x00 naming it too', async () => {
    const s = await startScram(broker());
    assert.equal(s.challenge.reason, 0x18);
    assert.equal(propOf(s.challenge.props, P.AuthenticationMethod), METHOD);
    s.c.send(answer(s));
    const connack = decodeConnack(await s.c.next(T.CONNACK));
    assert.equal(connack.reason, 0x00);
    assert.equal(propOf(connack.props, P.AuthenticationMethod), METHOD);
    assert.ok(s.scram.verify(propOf<Buffer>(connack.props, P.AuthenticationData)!), 'the server proves it knows the credentials');
    s.c.send(pingreq());
    await s.c.next(T.PINGRESP);
    s.c.checkWire();
  });

  it('[MQTT-3.15.2-1] [MQTT-3.15.1-1] sends AUTH only with Authenticate Reason Codes and fixed header flags 0000, initial exchange and re-authentication', async () => {
    const b = broker();
    const c = await scramClient(b);
    const again = new ScramClient('alice', PASSWORD);
    c.send(auth(0x19, [prop.authMethod(METHOD), prop.authData(again.first())]));
    const challenge = decodeAuth(await c.next(T.AUTH));
    c.send(auth(0x18, [prop.authMethod(METHOD), prop.authData(again.final(propOf<Buffer>(challenge.props, P.AuthenticationData)!))]));
    const done = decodeAuth(await c.next(T.AUTH));
    assert.deepEqual([challenge.reason, done.reason], [0x18, 0x00]);
    const sent = c.log.filter((f) => f.type === T.AUTH);
    assert.equal(sent.length, 3);
    for (const f of sent) {
      assert.equal(f.flags, 0, 'AUTH fixed header flags');
      assert.ok(AUTH_REASONS.includes(decodeAuth(f).reason));
    }
    c.checkWire();
  });

  it('[MQTT-3.15.1-1] treats an AUTH with reserved header flags set as malformed during the exchange: CONNACK 0x81 and close', async () => {
    const b = broker();
    for (const flags of [0x01, 0x02, 0x08]) {
      const s = await startScram(b);
      const data = propOf<Buffer>(s.challenge.props, P.AuthenticationData)!;
      s.c.send(auth(0x18, [prop.authMethod(METHOD), prop.authData(s.scram.final(data))], flags));
      await expectRefused(s.c, 0x81);
    }
  });

  it('[MQTT-3.15.1-1] treats an AUTH with reserved header flags set as malformed after CONNACK: DISCONNECT 0x81 and close', async () => {
    const c = await scramClient(broker());
    c.send(auth(0x19, [prop.authMethod(METHOD), prop.authData(new ScramClient('alice', PASSWORD).first())], 0x04));
    await c.expectDisconnect(0x81);
  });

  it('[MQTT-3.15.2-2] [MQTT-3.15.2-3] keeps its AUTH packets within the client Maximum Packet Size: no Reason String or User Property is added', async () => {
    const b = broker();
    // The server-first message has a fixed size (nonces and salt of fixed length): learn it, then allow exactly that.
    const probe = await startScram(b);
    const size = probe.challenge.size;
    probe.c.destroy();
    const c = await scramClient(b, { props: [prop.maximumPacketSize(size)] });
    const first = decodeAuth(c.log.find((f) => f.type === T.AUTH)!);
    assert.ok(first.size <= size);
    assert.deepEqual(first.props.map(([id]) => id).sort(), [P.AuthenticationMethod, P.AuthenticationData].sort());
    const again = new ScramClient('alice', PASSWORD);
    c.send(auth(0x19, [prop.authMethod(METHOD), prop.authData(again.first())]));
    const challenge = decodeAuth(await c.next(T.AUTH));
    c.send(auth(0x18, [prop.authMethod(METHOD), prop.authData(again.final(propOf<Buffer>(challenge.props, P.AuthenticationData)!))]));
    const done = decodeAuth(await c.next(T.AUTH));
    for (const a of [challenge, done]) {
      assert.ok(a.size <= size, `AUTH of ${a.size} bytes, the client accepts ${size}`);
      assert.equal(propOf(a.props, P.ReasonString), undefined);
      assert.deepEqual(userProps(a.props), []);
    }
  });

  it('[MQTT-4.12.0-1] refuses an Authentication Method it does not support with CONNACK 0x8C (or 0x87) and closes', async () => {
    const b = broker();
    for (const props of [[prop.authMethod('KERBEROS')], [prop.authMethod('scram-sha-256'), prop.authData('n,,n=alice,r=abc')]]) {
      const c = await peer(b);
      c.send(connect({ props }));
      await expectRefused(c, [0x8c, 0x87]);
      assert.ok(!c.log.some((f) => f.type === T.AUTH), 'no AUTH for a method it does not support');
    }
  });

  it('[MQTT-4.12.0-4] rejects a failed authentication with CONNACK ≥ 0x80 and closes: wrong password, unknown user, unusable first message', async () => {
    const b = broker();
    for (const o of [{ password: 'looking-glass' }, { user: 'mallory' }]) {
      const s = await startScram(b, o);
      assert.equal(s.challenge.reason, 0x18, 'an unknown user gets a normal-looking challenge');
      s.c.send(answer(s));
      assert.equal((await expectRefused(s.c, [0x86, 0x87])).reason, 0x86);
    }
    const early = await peer(b);
    early.send(connect({ props: [prop.authMethod(METHOD), prop.authData('p=tls-unique,,n=alice,r=abc')] }));
    const ack = await expectRefused(early, [0x80, 0x81, 0x82, 0x86, 0x87, 0x8c]);
    assert.ok(ack.reason >= 0x80);
  });

  it('[MQTT-4.12.0-4] keeps no session and publishes no will for a connection whose authentication failed', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('authfail/#', subOpts(1));
    const s = await startScram(b, { password: 'wrong', will: { topic: 'authfail/will', payload: 'x' } });
    s.c.send(answer(s));
    await expectRefused(s.c, 0x86);
    await w.none(T.PUBLISH);
  });

  for (const reason of [0x00, 0x19]) {
    it(`[MQTT-4.12.0-3] treats a client AUTH answering the server with reason ${hex(reason)} instead of 0x18 as a Protocol Error: CONNACK 0x82 and close`, async () => {
      const s = await startScram(broker());
      const data = propOf<Buffer>(s.challenge.props, P.AuthenticationData)!;
      s.c.send(auth(reason, [prop.authMethod(METHOD), prop.authData(s.scram.final(data))]));
      await expectRefused(s.c, 0x82);
    });
  }

  it('[MQTT-4.12.0-5] treats an AUTH that names another Authentication Method, or none, during the exchange as a Protocol Error: CONNACK 0x82', async () => {
    const b = broker();
    for (const method of [[prop.authMethod('OTHER')], []]) {
      const s = await startScram(b);
      const data = propOf<Buffer>(s.challenge.props, P.AuthenticationData)!;
      s.c.send(auth(0x18, [...method, prop.authData(s.scram.final(data))]));
      await expectRefused(s.c, 0x82);
    }
  });

  it(
    '[MQTT-3.1.4-1] [MQTT-4.13.1-1] §3.1.2.11.10: refuses Authentication Data without an Authentication Method as a Protocol Error: CONNACK 0x82 and close',
    async () => {
      const c = await peer(broker());
      c.send(connect({ props: [prop.authData('n,,n=alice,r=abc')] }));
      await expectRefused(c, 0x82);
    },
  );

  it('[MQTT-4.12.0-6] sends no AUTH, and no Authentication Method in CONNACK, to a client that set none', async () => {
    const b = broker();
    const c = await client(b);
    assert.equal(propOf(c.connack.props, P.AuthenticationMethod), undefined);
    assert.equal(propOf(c.connack.props, P.AuthenticationData), undefined);
    await c.sub('plain/t', subOpts(1));
    await c.pub('plain/t', 'x', { qos: 1 });
    await c.publishFrame();
    c.send(pingreq());
    await c.next(T.PINGRESP);
    assert.ok(!c.log.some((f) => f.type === T.AUTH));
  });

  for (const reason of [0x19, 0x18]) {
    it(`[MQTT-4.12.0-7] [MQTT-4.12.0-6] treats AUTH ${hex(reason)} from a client that set no Authentication Method as a Protocol Error: DISCONNECT 0x82, never AUTH`, async () => {
      const c = await client(broker());
      c.send(auth(reason, [prop.authMethod(METHOD), prop.authData('n,,n=alice,r=abc')]));
      await c.expectDisconnect(0x82);
      assert.ok(!c.log.some((f) => f.type === T.AUTH));
    });
  }

  it('[MQTT-3.1.2-30] treats a packet other than AUTH or DISCONNECT sent before CONNACK as a Protocol Error: CONNACK 0x82, the packet not processed', async () => {
    const b = broker();
    const packets: [string, Buffer][] = [
      ['PUBLISH', publish({ topic: 'early/t', payload: 'kept?', qos: 1, id: 1, retain: true })],
      ['SUBSCRIBE', subscribe(1, [['early/#', 0]])],
      ['PINGREQ', pingreq()],
    ];
    for (const [what, bytes] of packets) {
      const s = await startScram(b);
      s.c.send(bytes);
      await expectRefused(s.c, 0x82);
      assert.ok(!s.c.log.some((f) => f.type !== T.AUTH && f.type !== T.CONNACK), `${what} answered`);
    }
    const check = await client(b);
    await check.sub('early/#', subOpts(1));
    await check.none(T.PUBLISH);
  });

  it('[MQTT-3.1.2-30] accepts DISCONNECT during the exchange: the connection closes with neither CONNACK nor DISCONNECT, and the will is not published', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('early/will', subOpts(0));
    const s = await startScram(b, { will: { topic: 'early/will', payload: 'x' } });
    s.c.send(disconnect(0x00));
    await s.c.expectClosed();
    assert.deepEqual(s.c.log.map((f) => f.type), [T.AUTH]);
    await w.none(T.PUBLISH);
  });

  it(
    '[MQTT-3.1.2-30] accepts a DISCONNECT that carries a Session Expiry Interval during the exchange: the connection closes with neither CONNACK nor DISCONNECT',
    async () => {
      const s = await startScram(broker(), { props: [prop.sessionExpiry(60)] });
      s.c.send(disconnect(0x00, [prop.sessionExpiry(30)]));
      await s.c.expectClosed();
      assert.deepEqual(s.c.log.map((f) => f.type), [T.AUTH], 'nothing after the client DISCONNECT');
    },
  );
});

describe('MQTT 5.0 §4.12.1 re-authentication (SCRAM-SHA-256)', () => {
  const broker = scramBroker();

  /** Starts re-authentication on a connected client; returns the server's challenge. */
  async function reauth(c: Peer, scram: ScramClient, props: Bytes[] = [prop.authMethod(METHOD)]): Promise<Auth> {
    c.send(auth(0x19, [...props, prop.authData(scram.first())]));
    return decodeAuth(await c.next(T.AUTH));
  }

  it('[MQTT-4.12.1-1] [MQTT-4.12.0-5] re-authenticates with the method of the connection: AUTH 0x19 → AUTH 0x18 → AUTH 0x00, each naming the method, traffic flowing meanwhile', async () => {
    const b = broker();
    const c = await scramClient(b);
    await c.sub('reauth/t', subOpts(0));
    const again = new ScramClient('alice', PASSWORD);
    const challenge = await reauth(c, again);
    assert.equal(challenge.reason, 0x18);
    await c.pub('reauth/t', 'during');
    assert.equal((await c.publishFrame()).payload.toString(), 'during');
    c.send(auth(0x18, [prop.authMethod(METHOD), prop.authData(again.final(propOf<Buffer>(challenge.props, P.AuthenticationData)!))]));
    const done = decodeAuth(await c.next(T.AUTH));
    assert.equal(done.reason, 0x00);
    for (const a of [challenge, done]) assert.equal(propOf(a.props, P.AuthenticationMethod), METHOD);
    assert.ok(again.verify(propOf<Buffer>(done.props, P.AuthenticationData)!));
    c.send(pingreq());
    await c.next(T.PINGRESP);
    c.checkWire();
  });

  it('[MQTT-4.12.1-1] treats re-authentication with another Authentication Method, or none, as a Protocol Error: DISCONNECT 0x82 and close', async () => {
    const b = broker();
    for (const props of [[prop.authMethod('OTHER')], []]) {
      const c = await scramClient(b);
      c.send(auth(0x19, [...props, prop.authData(new ScramClient('alice', PASSWORD).first())]));
      await c.expectDisconnect(0x82);
      assert.equal(c.log.filter((f) => f.type === T.AUTH).length, 1, 'no AUTH answers it');
    }
  });

  it('[MQTT-4.12.1-2] closes the connection when re-authentication fails, after a DISCONNECT ≥ 0x80 (0x87), publishing the will', async () => {
    const b = broker();
    const w = await client(b);
    await w.sub('reauth/will', subOpts(0));
    const c = await scramClient(b, { will: { topic: 'reauth/will', payload: 'gone' } });
    const wrong = new ScramClient('alice', 'not-the-password');
    const challenge = await reauth(c, wrong);
    c.send(auth(0x18, [prop.authMethod(METHOD), prop.authData(wrong.final(propOf<Buffer>(challenge.props, P.AuthenticationData)!))]));
    const d = await c.expectDisconnect([0x87, 0x80, 0x86]);
    assert.ok(d.reason >= 0x80);
    assert.equal((await w.publishFrame()).payload.toString(), 'gone');
  });

  it('[MQTT-4.12.1-2] closes the connection when the re-authentication answer is not a Continue: a client AUTH 0x00 is a Protocol Error (DISCONNECT 0x82)', async () => {
    const c = await scramClient(broker());
    const again = new ScramClient('alice', PASSWORD);
    const challenge = await reauth(c, again);
    c.send(auth(0x00, [prop.authMethod(METHOD), prop.authData(again.final(propOf<Buffer>(challenge.props, P.AuthenticationData)!))]));
    await c.expectDisconnect(0x82);
  });
});
