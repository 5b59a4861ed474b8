// MQTT 3.1.1 conformance: statements that bind the client, seen from the server. Each test sends what
// the statement forbids and checks the reaction the specification gives the server: a CONNECT that
// does not conform to §3.1 closes the connection without CONNACK [MQTT-3.1.4-1]; any other protocol
// violation closes it [MQTT-4.8.0-1]; ill-formed UTF-8 closes it [MQTT-1.5.3-1].
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type ServerTestBroker, startBroker } from '../../helpers/broker.js';
import {
  connectPacket,
  packet,
  Peer,
  publishBytes,
  str,
  subscribeBytes,
  T,
  u16,
  unsubscribeBytes,
  watch,
} from './helpers.js';

const ILL_FORMED = [0x61, 0xed, 0xa0, 0x80]; // "a" and the surrogate U+D800

describe('MQTT 3.1.1 client rules, seen from the server', () => {
  let b: ServerTestBroker;
  beforeEach(async () => {
    b = await startBroker();
  });
  afterEach(() => b.close());

  /** The broker closes the connection without answering `bytes` (no CONNACK). */
  async function expectRefusedSilently(bytes: Buffer): Promise<void> {
    const p = await Peer.open(b);
    p.send(bytes);
    await p.expectClosed();
    assert.deepEqual(p.log.map((f) => f.type), [], 'no CONNACK');
  }

  /** A connected client sends `bytes`; the broker closes the connection without answering them. */
  async function expectClosedOn(bytes: Buffer): Promise<Peer> {
    const p = await Peer.connect(b);
    p.send(bytes);
    await p.expectClosed();
    assert.deepEqual(p.log.map((f) => f.type), [T.CONNACK], 'nothing answered');
    return p;
  }

  it('[MQTT-3.1.2-9] closes the connection without CONNACK on a CONNECT with the Will Flag but no Will Topic or no Will Message', async () => {
    await expectRefusedSilently(connectPacket({ flags: 0x06 }));
    await expectRefusedSilently(connectPacket({ flags: 0x06, trailing: [...str('will/t')] }));
  });

  it('[MQTT-3.1.2-11] closes the connection without CONNACK on a CONNECT without the Will Flag but with will fields or Will QoS / Retain bits', async () => {
    const w = await watch(b, 'will/#', 0);
    await expectRefusedSilently(connectPacket({ trailing: [...str('will/t'), ...str('message')] }));
    await expectRefusedSilently(connectPacket({ flags: 0x02 | 0x10 | 0x20 }));
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.2-13] closes the connection without CONNACK on Will QoS 1 or 2 without the Will Flag', async () => {
    await expectRefusedSilently(connectPacket({ flags: 0x02 | 0x08 }));
    await expectRefusedSilently(connectPacket({ flags: 0x02 | 0x10 }));
  });

  it('[MQTT-3.1.2-14] closes the connection without CONNACK on Will QoS 3', async () => {
    const w = await watch(b, 'will/#', 0);
    await expectRefusedSilently(connectPacket({ will: { topic: 'will/q3', payload: 'x', qos: 3 } }));
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.2-15] closes the connection without CONNACK on Will Retain without the Will Flag', async () => {
    await expectRefusedSilently(connectPacket({ flags: 0x02 | 0x20 }));
  });

  it('[MQTT-3.1.2-18] closes the connection without CONNACK on a user name sent without the User Name Flag', async () => {
    await expectRefusedSilently(connectPacket({ trailing: [...str('someone')] }));
  });

  it('[MQTT-3.1.2-19] closes the connection without CONNACK on the User Name Flag without a user name', async () => {
    await expectRefusedSilently(connectPacket({ flags: 0x82 }));
  });

  it('[MQTT-3.1.2-20] closes the connection without CONNACK on a password sent without the Password Flag', async () => {
    await expectRefusedSilently(connectPacket({ username: 'u', trailing: [...str('secret')] }));
  });

  it('[MQTT-3.1.2-21] closes the connection without CONNACK on the Password Flag without a password', async () => {
    await expectRefusedSilently(connectPacket({ username: 'u', flags: 0xc2 }));
  });

  it('[MQTT-3.1.2-22] closes the connection without CONNACK on the Password Flag without the User Name Flag', async () => {
    await expectRefusedSilently(connectPacket({ flags: 0x42, trailing: [...str('secret')] }));
  });

  it('[MQTT-3.1.3-1] closes the connection without CONNACK on payload fields out of order (the binary password before the user name)', async () => {
    await expectRefusedSilently(connectPacket({ flags: 0xc2, trailing: [...str([0xff, 0xfe]), ...str('user')] }));
  });

  it('[MQTT-3.1.3-3] closes the connection without CONNACK on a CONNECT without a client identifier', async () => {
    await expectRefusedSilently(packet(0x10, str('MQTT'), [4, 0x02], u16(60)));
  });

  it('[MQTT-3.1.3-4] closes the connection without CONNACK on a client identifier that is not UTF-8 (ill-formed, or with U+0000)', async () => {
    await expectRefusedSilently(connectPacket({ clientId: ILL_FORMED }));
    await expectRefusedSilently(connectPacket({ clientId: [0x61, 0x00] }));
  });

  it('[MQTT-3.1.3-10] closes the connection without CONNACK on a will topic that is not UTF-8, publishing nothing', async () => {
    const w = await watch(b, '#', 0);
    await expectRefusedSilently(connectPacket({ will: { topic: ILL_FORMED, payload: 'x' } }));
    await expectRefusedSilently(connectPacket({ will: { topic: [0x61, 0x00], payload: 'x' } }));
    await w.expectNo('publish');
  });

  it('[MQTT-3.1.3-11] closes the connection without CONNACK on a user name that is not UTF-8', async () => {
    await expectRefusedSilently(connectPacket({ username: ILL_FORMED }));
    await expectRefusedSilently(connectPacket({ username: [0x75, 0x00] }));
  });

  it('[MQTT-3.8.3-1] closes the connection on a SUBSCRIBE whose topic filter is not UTF-8, without SUBACK', async () => {
    await expectClosedOn(subscribeBytes(1, ['ok/#', 0], [ILL_FORMED, 0]));
  });

  it('[MQTT-3.8.3-3] closes the connection on a SUBSCRIBE without any topic filter, without SUBACK', async () => {
    await expectClosedOn(packet(0x82, u16(1)));
  });

  it('[MQTT-3.10.3-1] closes the connection on an UNSUBSCRIBE whose topic filter is not UTF-8, without UNSUBACK', async () => {
    await expectClosedOn(unsubscribeBytes(1, 'ok/#', ILL_FORMED));
  });

  it('[MQTT-3.10.3-2] closes the connection on an UNSUBSCRIBE without any topic filter, without UNSUBACK', async () => {
    await expectClosedOn(packet(0xa2, u16(1)));
  });

  it('[MQTT-3.14.4-1] closes the network connection itself when a client sends DISCONNECT and keeps it open, not publishing the will', async () => {
    const w = await watch(b, 'bye/will', 0);
    const p = await Peer.connect(b, { will: { topic: 'bye/will', payload: Buffer.from('x'), qos: 0, retain: false } });
    p.send([0xe0, 0x00]);
    await p.expectClosed();
    await w.expectNo('publish');
  });

  it('[MQTT-3.14.4-2] processes nothing a client sends after its DISCONNECT', async () => {
    const w = await watch(b, 'after/#', 1);
    const p = await Peer.connect(b);
    p.send(Buffer.concat([Buffer.from([0xe0, 0x00]), publishBytes('after/t', 'x', { qos: 1, id: 1, retain: true }), subscribeBytes(2, ['after/#', 0])]));
    await p.expectClosed();
    assert.deepEqual(p.log.map((f) => f.type), [T.CONNACK]);
    await w.expectNo('publish');
    const late = await watch(b, 'after/#', 1);
    await late.expectNo('publish');
  });

  it('[MQTT-2.3.1-2] takes a new QoS 2 message under a packet identifier still in use for a re-send: PUBREC again, not delivered', async () => {
    const w = await watch(b, 'inuse/#', 2);
    const p = await Peer.connect(b);
    p.publish('inuse/first', 'first', { qos: 2, id: 7 });
    await p.next('pubrec');
    p.publish('inuse/second', 'second', { qos: 2, id: 7 });
    await p.next('pubrec');
    p.send([0x62, 2, 0, 7]);
    await p.next('pubcomp');
    assert.equal((await w.message()).topic, 'inuse/first');
    await w.expectNo('publish');
  });

  /**
   * Each filter is refused with SUBACK 0x80, nothing is delivered through it, and UNSUBSCRIBE of it
   * closes the connection (3.1.1 has no failure code in UNSUBACK).
   */
  const invalidFilters = (filters: string[]) => async (): Promise<void> => {
    for (const filter of filters) {
      const p = await Peer.connect(b);
      p.send(subscribeBytes(1, [filter, 1]));
      assert.deepEqual([...(await p.next(T.SUBACK)).body.subarray(2)], [0x80], `SUBACK for ${filter}`);
      const pub = await Peer.connect(b);
      for (const t of ['ml/a/x', 'ml/x', 'mlx', 'ml', 'sl', 'sla', 'sl/ax', 'sl/x/y', 'xsl']) pub.publish(t, 'x');
      await pub.roundTrip();
      await p.expectNo('publish');
      p.send(unsubscribeBytes(2, filter));
      await p.expectClosed();
      assert.equal(p.of(T.UNSUBACK).length, 0);
    }
  };

  it(
    '[MQTT-4.7.1-2] refuses filters with a "#" that is not last or not a whole level: SUBACK 0x80, nothing delivered',
    invalidFilters(['ml/#/x', 'ml/x#', 'ml#', '#/']),
  );

  it(
    '[MQTT-4.7.1-3] refuses filters with a "+" that does not occupy a whole level: SUBACK 0x80, nothing delivered',
    invalidFilters(['sl+', 'sl/+x', 'sl/x+/y', '+sl']),
  );
});
