import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IAuthPacket, IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { scramCredentials, scramSha256 } from '../../../host/core/auth/scram.js';
import { collect, startCoreBroker, type TestBroker } from '../../helpers/broker.js';
import { ScramClient } from '../../helpers/scram-client.js';
import { pace } from '../../helpers/wait.js';
import { connectBytes } from '../../helpers/peer.js';

const METHOD = 'SCRAM-SHA-256';

describe('enhanced authentication (5.0 AUTH) with SCRAM-SHA-256', () => {
  let b: TestBroker;
  beforeEach(async () => {
    const users = new Map([['alice', await scramCredentials('wonderland', 4096)]]);
    b = await startCoreBroker({ authMethods: [scramSha256(users)] });
  });
  afterEach(() => b.close());

  async function scramConnect(username: string, password: string, clientId = 'scram-client') {
    const raw = await b.raw();
    raw.version(5);
    const scram = new ScramClient(username, password);
    raw.send(connectBytes({ protocolVersion: 5, clientId, properties: { authenticationMethod: METHOD, authenticationData: scram.first() } }));
    const challenge = (await raw.next('auth')) as IAuthPacket;
    return { raw, scram, challenge };
  }

  it('completes the exchange: CONNECT, AUTH 0x18, AUTH 0x18, CONNACK 0x00 with the server signature [MQTT-4.12.0-2], [MQTT-4.12.0-5]', async () => {
    const { raw, scram, challenge } = await scramConnect('alice', 'wonderland');
    assert.equal(challenge.reasonCode, 0x18);
    assert.equal(challenge.properties?.authenticationMethod, METHOD);
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: scram.final(challenge.properties!.authenticationData!) } }, 5);
    const ack = (await raw.next('connack')) as IConnackPacket;
    assert.equal(ack.reasonCode, 0);
    assert.equal(ack.properties?.authenticationMethod, METHOD);
    assert.ok(scram.verify(ack.properties!.authenticationData!), 'server proved it knows the credentials');
    raw.sendPacket({ cmd: 'pingreq' }, 5);
    await raw.next('pingresp');
    raw.destroy();
  });

  it('refuses a wrong password with CONNACK 0x86 and closes', async () => {
    const { raw, scram, challenge } = await scramConnect('alice', 'looking-glass');
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: scram.final(challenge.properties!.authenticationData!) } }, 5);
    const ack = (await raw.next('connack')) as IConnackPacket;
    assert.equal(ack.reasonCode, 0x86);
    await raw.expectClosed();
  });

  it('refuses an unknown user the same way, after a normal-looking challenge', async () => {
    const { raw, scram, challenge } = await scramConnect('mallory', 'x');
    assert.equal(challenge.reasonCode, 0x18);
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: scram.final(challenge.properties!.authenticationData!) } }, 5);
    assert.equal(((await raw.next('connack')) as IConnackPacket).reasonCode, 0x86);
    await raw.expectClosed();
  });

  it('refuses an unknown authentication method with CONNACK 0x8C Bad authentication method [MQTT-4.12.0-1]', async () => {
    const raw = (await b.raw()).version(5);
    raw.send(connectBytes({ protocolVersion: 5, properties: { authenticationMethod: 'KERBEROS' } }));
    assert.equal(((await raw.next('connack')) as IConnackPacket).reasonCode, 0x8c);
    await raw.expectClosed();
  });

  it('treats a packet other than AUTH or DISCONNECT before CONNACK as a protocol error [MQTT-3.1.2-30]', async () => {
    const { raw } = await scramConnect('alice', 'wonderland');
    raw.sendPacket({ cmd: 'pingreq' }, 5);
    assert.equal(((await raw.next('connack')) as IConnackPacket).reasonCode, 0x82);
    await raw.expectClosed();
  });

  it('treats AUTH naming another method as a protocol error [MQTT-4.12.0-5]', async () => {
    const { raw } = await scramConnect('alice', 'wonderland');
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'OTHER', authenticationData: Buffer.from('x') } }, 5);
    assert.equal(((await raw.next('connack')) as IConnackPacket).reasonCode, 0x82);
    await raw.expectClosed();
  });

  it('treats AUTH from a client that did not use enhanced authentication as a protocol error [MQTT-4.12.0-7]', async () => {
    const raw = await b.raw();
    await raw.handshake({ protocolVersion: 5 });
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD } }, 5);
    assert.equal(((await raw.next('disconnect')) as IDisconnectPacket).reasonCode, 0x82);
    await raw.expectClosed();
  });

  it('re-authenticates a connected client (AUTH 0x19 … AUTH 0x00) while it keeps publishing [MQTT-4.12.1-1]', async () => {
    const first = await scramConnect('alice', 'wonderland');
    const raw = first.raw;
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: first.scram.final(first.challenge.properties!.authenticationData!) } }, 5);
    await raw.next('connack');
    raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'reauth/t', qos: 0 }] }, 5);
    await raw.next('suback');
    const again = new ScramClient('alice', 'wonderland');
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD, authenticationData: again.first() } }, 5);
    const challenge = (await raw.next('auth')) as IAuthPacket;
    assert.equal(challenge.reasonCode, 0x18);
    raw.sendPacket({ cmd: 'publish', topic: 'reauth/t', payload: Buffer.from('during'), qos: 0, dup: false, retain: false }, 5);
    await raw.next('publish');
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: again.final(challenge.properties!.authenticationData!) } }, 5);
    const done = (await raw.next('auth')) as IAuthPacket;
    assert.equal(done.reasonCode, 0x00);
    assert.ok(again.verify(done.properties!.authenticationData!));
    raw.destroy();
  });

  it('disconnects with 0x87 Not authorized when re-authentication fails', async () => {
    const first = await scramConnect('alice', 'wonderland');
    const raw = first.raw;
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: first.scram.final(first.challenge.properties!.authenticationData!) } }, 5);
    await raw.next('connack');
    const wrong = new ScramClient('alice', 'nope');
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD, authenticationData: wrong.first() } }, 5);
    const challenge = (await raw.next('auth')) as IAuthPacket;
    raw.sendPacket({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: wrong.final(challenge.properties!.authenticationData!) } }, 5);
    assert.equal(((await raw.next('disconnect')) as IDisconnectPacket).reasonCode, 0x87);
    await raw.expectClosed();
  });
});

describe('the authenticate hook', () => {
  let b: TestBroker;
  afterEach(() => b.close());

  it('accepts, refuses with the version’s code (0x04 / 0x86), and may be asynchronous', async () => {
    b = await startCoreBroker({
      authenticate: async ({ username, password }) => {
        await pace(20);
        return username === 'u' && Buffer.from(password ?? []).toString() === 'p';
      },
    });
    const good = await b.client({ username: 'u', password: 'p' });
    assert.ok(good.connected);
    const v4 = await b.raw();
    assert.equal((await v4.handshake({ username: 'u', password: Buffer.from('bad') })).returnCode, 4);
    await v4.expectClosed();
    const v5 = await b.raw();
    assert.equal(((await v5.handshake({ protocolVersion: 5, username: 'x', password: Buffer.from('p') })) as IConnackPacket).reasonCode, 0x86);
    await v5.expectClosed();
  });

  it('serves packets sent right after CONNECT once authentication finishes, in order (§3.1.4)', async () => {
    b = await startCoreBroker({ authenticate: () => pace(50).then(() => true) });
    const sub = await b.client();
    await sub.subscribeAsync('pipe/#');
    const raw = await b.raw();
    raw.send(Buffer.concat([
      connectBytes({ clientId: 'pipeliner' }),
      ...[1, 2, 3].map((i) => Buffer.from([0x30, 9, 0, 6, ...Buffer.from(`pipe/${i}`), 0x30 + i])),
    ]));
    await raw.next('connack');
    const got = await collect(sub, 3);
    assert.deepEqual(got.map((m) => m.topic), ['pipe/1', 'pipe/2', 'pipe/3']);
    raw.destroy();
  });
});
