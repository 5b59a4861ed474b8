// Rotating the TLS certificate of mqtts and wss listeners: SIGHUP to a real `arbormq` process, and
// POST /api/v1/reload — established connections stay, new handshakes get the new certificate, and a
// broken file changes nothing.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { writePasswordFile } from '../helpers/access-files.js';
import { collect, connectClient } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';
import { createPki, type TestPki } from '../helpers/certificates.js';
import { kill, startCli, type RunningCli } from '../helpers/cli.js';
import { local, startServer } from '../helpers/server.js';

const TOKEN = 'certificate-reload-token-0123456789';

/** The SHA-256 fingerprint of the certificate a new TLS handshake with 127.0.0.1:`port` presents. */
function presented(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

const fingerprint = async (certFile: string): Promise<string> => new X509Certificate(await readFile(certFile)).fingerprint256;

describe('TLS certificate reload', () => {
  let first: TestPki;
  let second: TestPki;
  let dir: string;
  let certFile: string;
  let keyFile: string;
  let cli: RunningCli | undefined;

  /** The listeners' files hold `pki`'s certificate and key. */
  const install = async (pki: TestPki): Promise<void> => {
    await copyFile(pki.certFile, certFile);
    await copyFile(pki.keyFile, keyFile);
  };

  /** Clients over mqtts and wss trusting `pki`'s CA, subscribed to their own topic. */
  const tlsClients = async (ports: { mqtts: number; wss: number }, pki: TestPki, name: string): Promise<MqttClient[]> => {
    const ca = await readFile(pki.caFile);
    const clients = [
      await connectClient(`mqtts://127.0.0.1:${ports.mqtts}`, { ca, clientId: `${name}-tls`, protocolVersion: 5 }),
      await connectClient(`wss://127.0.0.1:${ports.wss}/mqtt`, { ca, clientId: `${name}-wss`, protocolVersion: 5 }),
    ];
    for (const c of clients) await c.subscribeAsync(`rotate/${c.options.clientId}`, { qos: 1 });
    return clients;
  };

  /** Each client still works: it publishes to its topic and gets the message back over the same connection. */
  const stillWorking = async (clients: MqttClient[]): Promise<void> => {
    for (const c of clients) {
      await c.publishAsync(`rotate/${c.options.clientId}`, 'still here', { qos: 1 });
      assert.equal((await collect(c, 1, 5000))[0]!.payload.toString(), 'still here');
      assert.equal(c.connected, true);
    }
  };

  before(async () => {
    [first, second] = await Promise.all([createPki(), createPki()]);
    dir = await mkdtemp(join(tmpdir(), 'arbormq-cert-reload-'));
    certFile = join(dir, 'server.crt');
    keyFile = join(dir, 'server.key');
  });
  after(async () => {
    await kill(cli);
    await Promise.all([first.remove(), second.remove(), rm(dir, { recursive: true, force: true })]);
  });

  it('SIGHUP: established mqtts and wss connections stay, new handshakes present the new certificate', async () => {
    await install(first);
    await writeFile(
      join(dir, 'arbormq.json'),
      JSON.stringify({
        listeners: [
          { protocol: 'mqtts', port: 0, certFile: 'server.crt', keyFile: 'server.key' },
          { protocol: 'wss', port: 0, certFile: 'server.crt', keyFile: 'server.key' },
        ],
      }),
    );
    cli = await startCli(['-c', join(dir, 'arbormq.json'), '--host', '127.0.0.1', '--memory'], { expect: 2 });
    const ports = { mqtts: cli.ports.get('mqtts')!, wss: cli.ports.get('wss')! };
    assert.equal(await presented(ports.mqtts), await fingerprint(first.certFile));
    const before = await tlsClients(ports, first, 'before');
    const closed: string[] = [];
    for (const c of before) c.on('close', () => closed.push(String(c.options.clientId)));

    await install(second);
    const reloads = (): number => cli!.logs.filter((l) => l.includes('"msg":"reloaded"')).length;
    cli.child.kill('SIGHUP');
    await until(() => reloads() === 1, 'the reload', 5000);
    assert.equal(reloads(), 1, cli.logs.join('\n'));

    for (const port of [ports.mqtts, ports.wss]) assert.equal(await presented(port), await fingerprint(second.certFile), `port ${port}`);
    await stillWorking(before);
    const after = await tlsClients(ports, second, 'after');
    await stillWorking(after);
    await assert.rejects(connectClient(`mqtts://127.0.0.1:${ports.mqtts}`, { ca: await readFile(first.caFile), protocolVersion: 5 }), /certificate/);

    // A key that does not belong to the certificate: the reload fails, logs why, and the certificate in use stays.
    await copyFile(first.keyFile, keyFile);
    cli.child.kill('SIGHUP');
    await until(() => cli!.logs.some((l) => l.includes('reload failed')), 'the failed reload to be logged', 5000);
    const failure = cli.logs.find((l) => l.includes('"msg":"reload failed; the previous settings stay in force"'));
    assert.match(failure ?? cli.logs.join('\n'), /listeners\[[01]\]: certFile .* and keyFile .* do not make a usable TLS identity/);
    assert.equal(await presented(ports.mqtts), await fingerprint(second.certFile));
    await stillWorking([...before, ...after]);
    assert.deepEqual(closed, []);
    await Promise.all([...before, ...after].map((c) => c.endAsync()));
    assert.equal(await cli.stop(), 0);
  });

  it('POST /api/v1/reload rotates them too, says what it reloaded, and changes nothing when one file is bad', async () => {
    await install(first);
    await writeFile(join(dir, 'admin.token'), TOKEN);
    await writePasswordFile(join(dir, 'passwd'), ['alice']);
    const s = await startServer({
      listeners: [{ protocol: 'mqtts', ...local, certFile, keyFile }, { protocol: 'wss', ...local, certFile, keyFile }, local],
      http: { port: 0, adminTokenFile: join(dir, 'admin.token') },
      passwordFile: join(dir, 'passwd'),
      allowAnonymous: true,
    });
    const reload = () => fetch(`http://127.0.0.1:${s.server.httpAddress()!.port}/api/v1/reload`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
    const carol = () => connectClient(s.url('mqtt'), { username: 'carol', password: 'pw', protocolVersion: 5 });
    try {
      const ports = { mqtts: s.port('mqtts'), wss: s.port('wss') };
      const before = await tlsClients(ports, first, 'api-before');
      // A new user and a key that does not match: neither is taken into use.
      await writePasswordFile(join(dir, 'passwd'), ['alice', 'carol']);
      await copyFile(second.keyFile, keyFile);
      const refused = await reload();
      assert.equal(refused.status, 500);
      assert.match(((await refused.json()) as { error: { message: string } }).error.message, /do not make a usable TLS identity/);
      await assert.rejects(carol());
      assert.equal(await presented(ports.mqtts), await fingerprint(first.certFile));

      await install(second);
      const res = await reload();
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { reloaded: ['passwordFile', `certificates of mqtts:${ports.mqtts}`, `certificates of wss:${ports.wss}`, 'adminTokenFile'] });
      assert.equal(await presented(ports.wss), await fingerprint(second.certFile));
      await (await carol()).endAsync();
      await stillWorking(before);
      await Promise.all(before.map((c) => c.endAsync()));
    } finally {
      await s.close();
    }
  });
});
