import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type IClientOptions } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { WebSocket } from 'ws';
import { collect, connectClient, expectSilence } from '../helpers/broker.js';
import { createPki, type TestPki } from '../helpers/certificates.js';
import { grantedCodes, local, startServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

/** Opens a bare WebSocket to the broker; resolves once open (or rejects with the handshake error). */
function openWebSocket(url: string, protocols: string[] = ['mqtt']): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** Decodes every MQTT packet arriving on a bare WebSocket, across frames. */
function packetsOf(ws: WebSocket, protocolVersion: 4 | 5 = 4): mqttPacket.Packet[] {
  const packets: mqttPacket.Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion });
  parser.on('packet', (p: mqttPacket.Packet) => packets.push(p));
  ws.on('message', (data: Buffer) => parser.parse(data));
  return packets;
}

/** Resolves with how an MQTT.js connection attempt ended when it is refused: its error, or "closed" (a TLS 1.3 alert may arrive as a plain close). */
function refusal(url: string, options: IClientOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 2000, ...options });
    client.once('connect', () => {
      client.end(true);
      reject(new Error('connected, but should have been refused'));
    });
    client.once('error', (error) => {
      client.end(true);
      resolve(error.message);
    });
    client.once('close', () => resolve('closed'));
  });
}

describe('listeners: TCP, TLS, WebSocket and secure WebSocket share one broker', () => {
  let pki: TestPki;
  let s: TestServer;
  before(async () => {
    pki = await createPki();
    const tls = { certFile: pki.certFile, keyFile: pki.keyFile };
    s = await startServer({
      listeners: [
        { protocol: 'mqtt', ...local },
        { protocol: 'mqtts', ...local, ...tls },
        { protocol: 'ws', ...local },
        { protocol: 'wss', ...local, ...tls },
      ],
    });
  });
  after(async () => {
    await s.close();
    await pki.remove();
  });

  it('delivers a message published over TCP to subscribers on TLS, ws and wss, MQTT 3.1.1 and 5.0', async () => {
    const trust = { ca: await readFile(pki.caFile), rejectUnauthorized: true };
    const subscribers = [
      await s.client(s.url('mqtts'), { ...trust }),
      await s.client(s.url('ws'), { protocolVersion: 5 }),
      await s.client(s.url('wss'), { ...trust, protocolVersion: 4 }),
      await s.client(s.url('wss'), { ...trust, protocolVersion: 5 }),
    ];
    for (const c of subscribers) await c.subscribeAsync('shared/+', { qos: 1 });
    const publisher = await s.client(s.url('mqtt'));
    const got = subscribers.map((c) => collect(c, 1));
    await publisher.publishAsync('shared/one', 'from tcp', { qos: 1 });
    for (const g of got) assert.equal((await g)[0]!.payload.toString(), 'from tcp');
    assert.equal(s.server.connectionCount, 5);
  });

  it('publishes from a WebSocket client to a TCP subscriber', async () => {
    const sub = await s.client(s.url('mqtt'), { protocolVersion: 5 });
    await sub.subscribeAsync('from/ws');
    const pub = await s.client(s.url('ws'));
    const got = collect(sub, 1);
    await pub.publishAsync('from/ws', Buffer.from([0, 1, 2, 255]), { qos: 1 });
    assert.deepEqual([...(await got)[0]!.payload], [0, 1, 2, 255]);
  });

  it('selects the "mqtt" WebSocket subprotocol', async () => {
    const ws = await openWebSocket(s.url('ws'), ['mqttv3.1', 'mqtt']);
    assert.equal(ws.protocol, 'mqtt');
    ws.close();
    await once(ws, 'close');
  });

  it('serves several MQTT packets in one WebSocket frame and a packet split across frames, answering each batch in one frame', async () => {
    const ws = await openWebSocket(s.url('ws'));
    const frames: number[] = [];
    ws.on('message', (data: Buffer) => frames.push(data.length));
    const packets = packetsOf(ws);
    const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'ws-frames', keepalive: 30 });
    const subscribe = mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'frames/#', qos: 0 }] });
    const publish = mqttPacket.generate({ cmd: 'publish', topic: 'frames/x', payload: Buffer.from('split'), qos: 0, retain: false, dup: false });
    // CONNECT and SUBSCRIBE together in one frame: CONNACK and SUBACK are written in the same
    // tick, so they come back as one frame of 4 + 5 bytes.
    ws.send(Buffer.concat([connect, subscribe]));
    await until(() => packets.length === 2);
    assert.deepEqual(
      packets.map((p) => p.cmd),
      ['connack', 'suback'],
    );
    assert.deepEqual(frames, [9]);
    // A PUBLISH cut in two frames is reassembled.
    ws.send(publish.subarray(0, 5));
    ws.send(publish.subarray(5));
    await until(() => packets.length === 3);
    assert.equal((packets[2] as mqttPacket.IPublishPacket).payload.toString(), 'split');
    ws.close();
    await once(ws, 'close');
  });

  it('memory reservation attack over WebSocket: a frame claiming 16 MiB before CONNECT is accepted closes the connection (1009), and frames up to maxPacketSize pass after CONNACK', async () => {
    const ws = await openWebSocket(s.url('ws'));
    // A masked client frame header (binary, 64-bit length) and a first slice of its payload, written
    // straight to the socket: `ws` would only ever send whole frames.
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(16 * 1024 * 1024), 2);
    (ws as unknown as { _socket: import('node:net').Socket })._socket.write(Buffer.concat([header, Buffer.alloc(64 * 1024)]));
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, 1009);

    const sub = await s.client(s.url('mqtt'));
    await sub.subscribeAsync('ws/large');
    const pub = await s.client(s.url('ws'));
    const got = collect(sub, 1);
    await pub.publishAsync('ws/large', Buffer.alloc(512 * 1024, 9), { qos: 1 });
    assert.equal((await got)[0]!.payload.length, 512 * 1024);
  });

  it('closes a WebSocket that sends a text frame (MQTT needs binary frames)', async () => {
    const ws = await openWebSocket(s.url('ws'));
    ws.send('CONNECT please');
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, 1003);
  });

  it('answers 404 to a WebSocket upgrade on another path', async () => {
    await assert.rejects(openWebSocket(s.url('ws', '/elsewhere')), /404/);
  });

  it('refuses a TLS client that does not trust the server certificate', async () => {
    await assert.rejects(connectClient(s.url('mqtts'), { rejectUnauthorized: true }), /self.signed|unable to verify|certificate/i);
  });
});

describe('mutual TLS: client certificates and their common name as user name', () => {
  let pki: TestPki;
  let s: TestServer;
  let dir: string;
  before(async () => {
    pki = await createPki();
    dir = pki.dir;
    const acl = join(dir, 'acl');
    await writeFile(acl, ['user sensor-17', 'topic readwrite devices/sensor-17/#', '', 'pattern read commands/%u'].join('\n'));
    const mtls = { certFile: pki.certFile, keyFile: pki.keyFile, caFile: pki.caFile, requireCertificate: true, useIdentityAsUsername: true };
    s = await startServer({
      listeners: [
        { protocol: 'mqtts', ...local, ...mtls },
        { protocol: 'wss', ...local, ...mtls },
      ],
      allowAnonymous: false,
      aclFile: acl,
    });
  });
  after(async () => {
    await s.close();
    await pki.remove();
  });

  it('accepts a certificate from the trusted CA and applies the ACL rules of its common name', async () => {
    const ca = await readFile(pki.caFile);
    const identity = await pki.client('sensor-17');
    for (const protocol of ['mqtts', 'wss'] as const) {
      // The user name in CONNECT is ignored: the certificate says who the client is.
      const c = await s.client(s.url(protocol), { ca, ...identity, username: 'admin', protocolVersion: 5 });
      assert.deepEqual(await grantedCodes(c, ['devices/sensor-17/#', 'commands/sensor-17', 'devices/other/#']), [0, 0, 0x87], protocol);
      const got = collect(c, 1);
      await c.publishAsync('devices/sensor-17/temp', '21', { qos: 1 });
      assert.equal((await got)[0]!.topic, 'devices/sensor-17/temp');
      await assert.rejects(c.publishAsync('devices/other/temp', 'x', { qos: 1 }), /Not authorized|135/i);
      await expectSilence(c);
    }
  });

  it('refuses a client without a certificate during the TLS handshake', async () => {
    const ca = await readFile(pki.caFile);
    assert.match(await refusal(s.url('mqtts'), { ca }), /certificate|closed|ECONNRESET/i);
  });

  it('refuses a client certificate signed by another CA', async () => {
    const ca = await readFile(pki.caFile);
    const stranger = await pki.stranger();
    const served = s.server.connectionCount;
    assert.match(await refusal(s.url('mqtts'), { ca, ...stranger }), /unknown ca|certificate|closed|ECONNRESET/i);
    assert.equal(s.server.connectionCount, served, 'the connection never reached the broker');
  });
});
