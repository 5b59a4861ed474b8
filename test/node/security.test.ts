import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { IConnackPacket, Packet } from 'mqtt-packet';
import { ArborServer } from '../../host/node/server.js';
import { writePasswordFile } from '../helpers/access-files.js';
import { assertArenaEmpty, collect, connectClient } from '../helpers/broker.js';
import { createPki, type TestPki } from '../helpers/certificates.js';
import { connect, encode, prop, publish } from '../helpers/packets.js';
import { Peer } from '../helpers/peer.js';
import { until } from '../helpers/wait.js';

/**
 * The security suite's standing attacks beyond the regression tests of docs/SECURITY.md: TLS
 * settings, CONNECT floods from many addresses, and fields long enough to cost memory.
 */

/** Every 127.0.0.x is this machine: floods and attempts come from many addresses without a network. */
const address = (i: number): string => `127.0.0.${2 + (i % 250)}`;

interface LogLine {
  message: string;
  fields: Record<string, unknown>;
}

async function server(options: Parameters<typeof ArborServer.start>[0]): Promise<{ s: ArborServer; lines: LogLine[] }> {
  const lines: LogLine[] = [];
  const s = await ArborServer.start({ ...options, logger: (_level, message, fields) => lines.push({ message, fields: fields ?? {} }) });
  return { s, lines };
}

describe('TLS settings', () => {
  let pki: TestPki;
  let s: ArborServer;
  let lines: LogLine[];
  let ca: Buffer;
  let n = 0;
  before(async () => {
    pki = await createPki();
    ca = await readFile(pki.caFile);
    ({ s, lines } = await server({ listeners: [{ protocol: 'mqtts', port: 0, host: '127.0.0.1', certFile: pki.certFile, keyFile: pki.keyFile, caFile: pki.caFile, requireCertificate: true }] }));
  });
  after(async () => {
    await s.close();
    await assertArenaEmpty(s.broker.core);
    await pki.remove();
  });

  /** A TLS handshake from a fresh address: "ok <version> <suite>" or the client's error code; and the reason the server logged for that address. */
  async function handshake(options: ConnectionOptions): Promise<{ client: string; server: () => string | undefined; socket: TLSSocket }> {
    const from = address(n++);
    let socket!: TLSSocket;
    const client = await new Promise<string>((resolve) => {
      socket = tlsConnect({ socket: netConnect({ port: s.port, host: '127.0.0.1', localAddress: from }), servername: 'localhost', ca, ...options }, () => {
        resolve(`ok ${socket.getProtocol()} ${socket.getCipher().name}`);
        // TLS 1.3 verifies the client's certificate after the client is done: wait for the server's word.
        socket.once('close', () => undefined);
      });
      socket.on('error', (error: Error & { code?: string }) => resolve(`${error.code} ${error.message}`));
      socket.once('close', () => resolve('closed'));
    });
    const logged = (): string | undefined => lines.find((l) => l.fields.address === from || l.fields.address === `::ffff:${from}`)?.fields.reason as string | undefined;
    return { client, server: logged, socket };
  }

  it('refuses TLS 1.0 and 1.1, and says so in the log', async () => {
    for (const maxVersion of ['TLSv1', 'TLSv1.1'] as const) {
      const r = await handshake({ ...(await pki.client('c')), minVersion: 'TLSv1', maxVersion, ciphers: 'DEFAULT@SECLEVEL=0' });
      assert.match(r.client, /PROTOCOL_VERSION|protocol version|unsupported protocol/i, maxVersion);
      await until(() => r.server() !== undefined, `the log to say why ${maxVersion} was refused`);
      assert.equal(r.server(), 'the client offers only TLS versions older than 1.2');
    }
  });

  it('refuses TLS 1.2 clients offering only weak suites (CBC with SHA-1, no encryption), and accepts forward-secret AEAD suites and TLS 1.3', async () => {
    const identity = await pki.client('c');
    for (const ciphers of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-NULL-SHA:@SECLEVEL=0']) {
      const r = await handshake({ ...identity, maxVersion: 'TLSv1.2', ciphers });
      assert.match(r.client, /HANDSHAKE_FAILURE|handshake failure/i, ciphers);
      await until(() => r.server() !== undefined, `the log to say why ${ciphers} was refused`);
      assert.match(r.server()!, /^no cipher suite in common/, ciphers);
    }
    for (const [maxVersion, ciphers] of [
      ['TLSv1.2', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
      ['TLSv1.2', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
      ['TLSv1.3', undefined],
    ] as const) {
      const r = await handshake({ ...identity, maxVersion, ...(ciphers ? { ciphers } : {}) });
      assert.match(r.client, new RegExp(`^ok ${maxVersion.replace('.', '\\.')} `), `${maxVersion} ${ciphers}`);
      r.socket.destroy();
    }
    await until(() => s.connectionCount === 0, 'every TLS connection to be gone');
  });

  it('reports certificate errors clearly: on the client, a server it does not trust; in the log, a client certificate missing or from another CA', async () => {
    const untrusting = await handshake({ ...(await pki.client('c')), ca: undefined });
    assert.match(untrusting.client, /SELF_SIGNED_CERT_IN_CHAIN self-signed certificate in certificate chain/);
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const none = await handshake({ maxVersion });
      await until(() => none.server() !== undefined, 'the log to name the missing certificate');
      assert.equal(none.server(), 'the client sent no certificate, and this listener requires one', maxVersion);
      const stranger = await handshake({ ...(await pki.stranger()), maxVersion });
      await until(() => stranger.server() !== undefined, "the log to name the stranger's certificate");
      assert.equal(stranger.server(), 'the client certificate was refused: it is not signed by the CA of caFile', maxVersion);
    }
    assert.equal(s.connectionCount, 0, 'none of them reached the broker');
  });
});

/** Opens a TCP connection from `from`, sends CONNECT bytes, and resolves with the CONNACK (or null if closed without one). */
async function connectFrom(port: number, from: string, bytes: Uint8Array, version: 4 | 5): Promise<{ connack: IConnackPacket | null; peer: Peer }> {
  const peer = (await new Peer().tcp(port, from)).version(version);
  peer.send(bytes);
  // Hundreds of handshakes at once on a loaded machine: the CONNACK, or the close, may take a while.
  const connack = await peer.next<IConnackPacket>('connack', 30_000).catch((error: Error) => {
    if (peer.isClosed) return null;
    throw error;
  });
  return { connack, peer };
}

const code = (c: IConnackPacket | null): number | undefined => (c === null ? undefined : (c.reasonCode ?? c.returnCode));

describe('CONNECT floods from many addresses', () => {
  it('400 CONNECTs at once from 40 addresses: maxConnections admits 200 and refuses the rest with 0x97 / 3; a bystander keeps exchanging; everything is let go', async () => {
    const { s } = await server({ listeners: [{ port: 0, host: '127.0.0.1' }], maxConnections: 201 });
    const bystander = await connectClient(`mqtt://127.0.0.1:${s.port}`, { protocolVersion: 5 });
    await bystander.subscribeAsync('bystander');
    const attempts = Array.from({ length: 400 }, (_, i) => {
      const version = i % 2 === 0 ? 4 : 5;
      return connectFrom(s.port, address(i % 40), encode(connect({ version, clientId: `flood-${i}`, clean: true, keepAlive: 60, props: [] })), version);
    });
    const exchanges = (async () => {
      for (let i = 0; i < 20; i++) {
        await bystander.publishAsync('bystander', String(i), { qos: 1 });
        await collect(bystander, 1);
      }
    })();
    const results = await Promise.all(attempts);
    await exchanges;
    const accepted = results.filter((r) => code(r.connack) === 0).length;
    const refused = results.filter((r) => code(r.connack) === 0x97 || code(r.connack) === 3).length;
    assert.equal(accepted, 200);
    assert.equal(accepted + refused, 400, 'each attempt heard a CONNACK');
    for (const r of results) r.peer.destroy();
    await until(() => s.connectionCount === 1, 'only the bystander to be left');
    assert.equal(s.connectionCount, 1, 'only the bystander is left');
    assert.equal(s.broker.metrics.unauthenticatedBytes, 0);
    await bystander.endAsync();
    await s.close();
    await assertArenaEmpty(s.broker.core);
  });

  it('password guessing from 20 addresses at once: each address gets its own 5 checks, then 0x9F; a client from another address with the right password gets in', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'arbormq-flood-'));
    const passwordFile = join(dir, 'passwd');
    await writePasswordFile(passwordFile, ['alice']);
    const { s } = await server({ listeners: [{ port: 0, host: '127.0.0.1' }], passwordFile, authFailureLimit: 5 });
    const wrong = (i: number): Uint8Array => encode(connect({ version: 5, clientId: `guess-${i}`, clean: true, keepAlive: 60, username: 'alice', password: new TextEncoder().encode(`guess${i}`), props: [] }));
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => connectFrom(s.port, address(i % 20), wrong(i), 5)));
    const codes = results.map((r) => code(r.connack));
    assert.equal(codes.filter((c) => c === 0x86).length, 20 * 5, 'five password checks per address');
    assert.equal(codes.filter((c) => c === 0x9f).length, 200 - 20 * 5);
    const right = await connectFrom(s.port, address(100), encode(connect({ version: 5, clientId: 'alice', clean: true, keepAlive: 60, username: 'alice', password: new TextEncoder().encode('pw'), props: [] })), 5);
    assert.equal(code(right.connack), 0);
    right.peer.destroy();
    for (const r of results) r.peer.destroy();
    await s.close();
    await assertArenaEmpty(s.broker.core);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('fields long enough to cost memory', () => {
  let s: ArborServer;
  before(async () => {
    ({ s } = await server({ listeners: [{ port: 0, host: '127.0.0.1' }], maxPacketSize: 64 * 1024 }));
  });
  after(async () => {
    await s.close();
    await assertArenaEmpty(s.broker.core);
  });

  /** Sends only the fixed header of `bytes` and as much of the rest as `sendBytes`; resolves once the broker closed, with what it answered. */
  async function closedAtHeader(bytes: Uint8Array, sendBytes: number, setup?: Uint8Array): Promise<Packet[]> {
    const peer = (await new Peer().tcp(s.port)).version(5);
    if (setup) peer.send(setup);
    peer.send(bytes.subarray(0, sendBytes));
    await peer.expectClosed(5000);
    return peer.log.map((f) => peer.decode(f));
  }

  for (const [field, packet] of [
    ['a 65,535-byte client identifier', connect({ version: 4, clientId: 'x'.repeat(65_535), clean: true, keepAlive: 60, props: [] })],
    ['a 65,535-byte user name', connect({ version: 5, clientId: 'u', clean: true, keepAlive: 60, username: 'x'.repeat(65_535), props: [] })],
    ['a 1 MiB list of user properties', connect({ version: 5, clientId: 'p', clean: true, keepAlive: 60, props: Array.from({ length: 1024 }, (_, i) => prop(0x26, [`k${i}`, 'v'.repeat(1000)])) })],
  ] as const) {
    it(`a CONNECT with ${field} is refused at its fixed header, before its body is read or held (maxUnauthenticatedBytes)`, async () => {
      const bytes = encode(packet);
      assert.ok(bytes.length > 64 * 1024);
      const answered = await closedAtHeader(bytes, 5);
      assert.deepEqual(answered, [], 'the protocol version is not known yet: closed without a CONNACK');
      assert.equal(s.broker.metrics.unauthenticatedBytes, 0);
    });
  }

  it('a PUBLISH with 1 MiB of user properties is refused at its header with DISCONNECT 0x95, before its body is read', async () => {
    const setup = encode(connect({ version: 5, clientId: 'big-props', clean: true, keepAlive: 60, props: [] }));
    const big = encode(publish(5, { topic: 't', qos: 1, retain: false, dup: false, packetId: 1, payload: new Uint8Array(0), props: Array.from({ length: 1024 }, (_, i) => prop(0x26, [`k${i}`, 'v'.repeat(1000)])) }));
    const before = s.broker.core.arenaStats().bytesInUse;
    const answered = await closedAtHeader(big, 5, setup);
    assert.deepEqual(answered.map((p) => (p.cmd === 'disconnect' ? `disconnect 0x${(p.reasonCode ?? 0).toString(16)}` : p.cmd)), ['connack', 'disconnect 0x95']);
    assert.equal(s.broker.core.arenaStats().bytesInUse, before);
  });
});
