// The admin API through real HTTP requests against a running server, with MQTT.js clients as the
// clients it lists and disconnects.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { loadConfig } from '../../host/node/config.js';
import { collect, connectClient, expectSilence } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';
import { writePasswordFile } from '../helpers/access-files.js';
import { kill, startCli, type RunningCli } from '../helpers/cli.js';
import { local, startServer, type TestServer } from '../helpers/server.js';

const TOKEN = 'test-admin-token-0123456789abcdef';

/** An HTTP client of the server's HTTP endpoint; requests carry the admin token unless `token` says otherwise. */
function api(base: () => string) {
  return async (method: string, path: string, token: string | null = TOKEN): Promise<{ status: number; body: any; headers: Headers }> => {
    const res = await fetch(`${base()}${path}`, { method, headers: token === null ? {} : { Authorization: `Bearer ${token}` } });
    const text = await res.text();
    let body: unknown = text;
    if ((res.headers.get('content-type') ?? '').startsWith('application/json')) body = JSON.parse(text);
    return { status: res.status, body, headers: res.headers };
  };
}

/** Resolves with the reason code of the DISCONNECT `client` receives (undefined: closed without one). */
function disconnection(client: MqttClient): Promise<number | undefined> {
  return new Promise((resolve) => {
    client.once('disconnect', (packet) => resolve(packet.reasonCode ?? 0));
    client.once('close', () => resolve(undefined));
  });
}

describe('admin API', () => {
  let dir: string;
  let s: TestServer;
  const call = api(() => `http://127.0.0.1:${s.server.httpAddress()!.port}`);
  const client = (options: IClientOptions) => s.client(s.url('mqtt'), { username: 'alice', password: 'pw', ...options });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-admin-'));
    await writeFile(join(dir, 'admin.token'), `${TOKEN}\n`);
    await writePasswordFile(join(dir, 'passwd'), ['alice']);
    await writeFile(join(dir, 'acl'), 'user alice\ntopic readwrite #\n');
    s = await startServer({
      listeners: [local],
      http: { port: 0, adminTokenFile: join(dir, 'admin.token') },
      passwordFile: join(dir, 'passwd'),
      aclFile: join(dir, 'acl'),
      dataDir: join(dir, 'data'),
    });
  });
  after(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens on loopback unless told otherwise', () => {
    assert.equal(s.server.httpAddress()!.address, '127.0.0.1');
  });

  it('asks every route but /health for the bearer token: 401 as JSON with the challenge', async () => {
    for (const path of ['/api/v1/clients', '/api/v1/sessions', '/api/v1/retained', '/api/v1/stats', '/metrics']) {
      for (const token of [null, 'wrong-token-wrong-token-wrong', `${TOKEN}x`]) {
        const r = await call('GET', path, token);
        assert.equal(r.status, 401, `${path} with ${token}`);
        assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="arbormq"');
        assert.equal(r.body.error.status, 401);
      }
    }
    assert.equal((await call('POST', '/api/v1/reload', null)).status, 401);
    assert.equal((await call('DELETE', '/api/v1/clients/x', null)).status, 401);
    assert.equal((await call('GET', '/health', null)).status, 200);
    assert.equal((await call('GET', '/metrics')).status, 200);
  });

  it('answers unknown routes and wrong methods with JSON errors', async () => {
    const missing = await call('GET', '/api/v1/nothing');
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, /no such route/);
    const wrong = await call('GET', '/api/v1/reload');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'POST');
    assert.equal((await call('POST', '/api/v1/clients')).status, 405);
    assert.equal((await call('GET', '/api/v1/retained?filter=a/%23/b')).status, 400);
    assert.equal((await call('GET', '/api/v1/clients?limit=0')).status, 400);
  });

  it('lists connected clients with address, protocol, keep alive, inflight, queued and subscriptions; looks one up', async () => {
    const c5 = await client({ clientId: 'lister-5', protocolVersion: 5, keepalive: 30 });
    const c4 = await client({ clientId: 'lister-4', protocolVersion: 4, keepalive: 45 });
    await c5.subscribeAsync(['l/a', 'l/+/b'], { qos: 1 });
    const { status, body } = await call('GET', '/api/v1/clients');
    assert.equal(status, 200);
    const ids = body.clients.map((c: { clientId: string }) => c.clientId);
    assert.ok(ids.includes('lister-5') && ids.includes('lister-4'), JSON.stringify(ids));
    const one = (await call('GET', '/api/v1/clients/lister-5')).body;
    assert.equal(one.clientId, 'lister-5');
    assert.equal(one.username, 'alice');
    assert.equal(one.protocolVersion, 5);
    assert.equal(one.keepAlive, 30);
    assert.equal(one.listener, `mqtt:${s.port('mqtt')}`);
    assert.match(one.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(one.inflight, 0);
    assert.equal(one.queued, 0);
    assert.deepEqual(one.subscriptions.map((x: { filter: string; qos: number }) => `${x.filter}@${x.qos}`), ['l/a@1', 'l/+/b@1']);
    assert.equal((await call('GET', '/api/v1/clients/lister-4')).body.keepAlive, 45);
    const none = await call('GET', '/api/v1/clients/nobody');
    assert.equal(none.status, 404);
    assert.deepEqual(none.body, { error: { status: 404, message: 'no client "nobody" is connected' } });
    const paged = (await call('GET', '/api/v1/clients?limit=1')).body;
    assert.equal(paged.clients.length, 1);
    assert.equal(paged.total, ids.length);
    const rest = (await call('GET', `/api/v1/clients?limit=1000&after=${encodeURIComponent(paged.next)}`)).body;
    assert.deepEqual([...paged.clients, ...rest.clients].map((c: { clientId: string }) => c.clientId), ids);
    assert.equal(rest.next, null);
    await Promise.all([c5.endAsync(), c4.endAsync()]);
  });

  it('DELETE clients/{id} disconnects a 5.0 client with 0x98 and a 3.1.1 client without a word; their wills are published', async () => {
    const watcher = await client({ clientId: 'will-watcher', protocolVersion: 5 });
    await watcher.subscribeAsync('wills/#', { qos: 1 });
    const c5 = await client({ clientId: 'kick-5', protocolVersion: 5, will: { topic: 'wills/kick-5', payload: Buffer.from('gone'), qos: 1, retain: false } });
    const c4 = await client({ clientId: 'kick-4', protocolVersion: 4, will: { topic: 'wills/kick-4', payload: Buffer.from('gone'), qos: 1, retain: false } });
    const [reason5, reason4] = [disconnection(c5), disconnection(c4)];
    assert.deepEqual((await call('DELETE', '/api/v1/clients/kick-5')).body, { disconnected: 'kick-5' });
    assert.equal((await call('DELETE', '/api/v1/clients/kick-4')).status, 200);
    assert.equal(await reason5, 0x98);
    assert.equal(await reason4, undefined);
    assert.deepEqual((await collect(watcher, 2, 5000)).map((m) => m.topic).sort(), ['wills/kick-4', 'wills/kick-5']);
    assert.equal((await call('DELETE', '/api/v1/clients/kick-5')).status, 404);
    await watcher.endAsync();
  });

  it('lists sessions online and offline; DELETE sessions/{id} ends one, its queue and, for a connected client, its connection (0x98, no will)', async () => {
    const away = await connectClient(s.url('mqtt'), { clientId: 'away', username: 'alice', password: 'pw', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
    await away.subscribeAsync('queue/#', { qos: 1 });
    await away.endAsync();
    const pub = await client({ clientId: 'queue-pub', protocolVersion: 5 });
    for (const i of [1, 2, 3]) await pub.publishAsync(`queue/${i}`, String(i), { qos: 1 });
    const here = await client({ clientId: 'here', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 600 }, will: { topic: 'wills/here', payload: Buffer.from('x'), qos: 0, retain: false } });
    const sessions = (await call('GET', '/api/v1/sessions')).body.sessions as { clientId: string; online: boolean; queued: number; expiryInterval: number; username: string }[];
    const byId = new Map(sessions.map((x) => [x.clientId, x]));
    assert.deepEqual(
      { online: byId.get('away')!.online, queued: byId.get('away')!.queued, expiry: byId.get('away')!.expiryInterval, user: byId.get('away')!.username },
      { online: false, queued: 3, expiry: 600, user: 'alice' },
    );
    assert.equal(byId.get('here')!.online, true);
    assert.equal((await call('GET', '/api/v1/sessions/away')).body.queued, 3);

    assert.deepEqual((await call('DELETE', '/api/v1/sessions/away')).body, { deleted: 'away' });
    assert.equal((await call('GET', '/api/v1/sessions/away')).status, 404);
    const back = await connectClient(s.url('mqtt'), { clientId: 'away', username: 'alice', password: 'pw', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
    // A new session: no subscriptions, and none of the three queued messages.
    assert.deepEqual((await call('GET', '/api/v1/sessions/away')).body.subscriptions, []);
    await expectSilence(back);
    await back.endAsync();

    const watcher = await client({ clientId: 'here-watcher', protocolVersion: 5 });
    await watcher.subscribeAsync('wills/here', { qos: 0 });
    const reason = disconnection(here);
    assert.equal((await call('DELETE', '/api/v1/sessions/here')).status, 200);
    assert.equal(await reason, 0x98);
    await until(() => !s.server.broker.sessions.has('here'));
    assert.equal(s.server.broker.sessions.has('here'), false);
    await expectSilence(watcher);
    await Promise.all([pub.endAsync(), watcher.endAsync()]);
  });

  it('lists retained messages by filter, paged; DELETE retained/{topic} clears one', async () => {
    const pub = await client({ clientId: 'retainer', protocolVersion: 5 });
    for (const t of ['r/a', 'r/b/1', 'r/b/2', 'other/x']) await pub.publishAsync(t, `v-${t}`, { qos: 1, retain: true });
    const all = (await call('GET', `/api/v1/retained?filter=${encodeURIComponent('r/#')}`)).body;
    assert.deepEqual(
      all.retained.map((r: { topic: string; preview: string; bytes: number }) => `${r.topic}=${r.preview}`),
      ['r/a=v-r/a', 'r/b/1=v-r/b/1', 'r/b/2=v-r/b/2'],
    );
    const first = (await call('GET', `/api/v1/retained?filter=${encodeURIComponent('r/#')}&limit=2`)).body;
    assert.deepEqual([first.retained.map((r: { topic: string }) => r.topic), first.next, first.total], [['r/a', 'r/b/1'], 'r/b/1', 3]);
    const second = (await call('GET', `/api/v1/retained?filter=${encodeURIComponent('r/#')}&limit=2&after=${encodeURIComponent(first.next)}`)).body;
    assert.deepEqual([second.retained.map((r: { topic: string }) => r.topic), second.next], [['r/b/2'], null]);

    assert.deepEqual((await call('DELETE', '/api/v1/retained/r/b/1')).body, { deleted: 'r/b/1' });
    assert.equal((await call('DELETE', '/api/v1/retained/r/b/1')).status, 404);
    assert.equal((await call('DELETE', `/api/v1/retained/${encodeURIComponent('r/+')}`)).status, 400);
    const late = await client({ clientId: 'late', protocolVersion: 5 });
    await late.subscribeAsync('r/b/#', { qos: 1 });
    assert.deepEqual((await collect(late, 1)).map((m) => m.topic), ['r/b/2']);
    await expectSilence(late);
    await Promise.all([pub.endAsync(), late.endAsync()]);
  });

  it('POST reload takes new password and ACL files into use; a broken one is refused as JSON and the old rules stay', async () => {
    await writePasswordFile(join(dir, 'passwd'), ['alice', 'bob']);
    await assert.rejects(connectClient(s.url('mqtt'), { username: 'bob', password: 'pw', protocolVersion: 5 }));
    const ok = await call('POST', '/api/v1/reload');
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { reloaded: ['passwordFile', 'aclFile', 'adminTokenFile'] });
    const bob = await connectClient(s.url('mqtt'), { username: 'bob', password: 'pw', protocolVersion: 5 });
    await bob.endAsync();

    await writeFile(join(dir, 'acl'), 'user alice\ntopc readwrite #\n');
    const broken = await call('POST', '/api/v1/reload');
    assert.equal(broken.status, 500);
    assert.match(broken.body.error.message, /reload failed, the previous settings stay in force: aclFile: .*line 2/);
    const alice = await client({ clientId: 'after-reload', protocolVersion: 5 });
    await alice.subscribeAsync('still/#', { qos: 1 });
    await alice.publishAsync('still/allowed', 'yes', { qos: 1 });
    assert.equal((await collect(alice, 1))[0]!.topic, 'still/allowed');
    await writeFile(join(dir, 'acl'), 'user alice\ntopic readwrite #\n');
    await alice.endAsync();
  });

  it('reports stats, bridges, a broker snapshot and a stream of the live state', async () => {
    const stats = (await call('GET', '/api/v1/stats')).body;
    assert.equal(typeof stats.clientsConnected, 'number');
    assert.equal(typeof stats.version, 'string');
    assert.deepEqual(stats.bridges, []);
    assert.deepEqual((await call('GET', '/api/v1/bridges')).body, { bridges: [] });
    const snapshot = (await call('GET', '/api/v1/inspect?handles=4')).body;
    assert.ok(Array.isArray(snapshot.sessions) && Array.isArray(snapshot.arena.tiers));

    const streamer = await client({ clientId: 'streamed', protocolVersion: 5 });
    const res = await fetch(`http://127.0.0.1:${s.server.httpAddress()!.port}/api/v1/events`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const [event, data] = text.split('\n');
    assert.equal(event, 'event: state');
    const state = JSON.parse(data!.slice('data: '.length));
    assert.ok(state.clients.some((c: { clientId: string }) => c.clientId === 'streamed'));
    assert.ok(state.snapshot.sessions.some((x: { clientId: string }) => x.clientId === 'streamed'));
    assert.equal(typeof state.stats.publishReceived, 'number');
    await streamer.endAsync();
  });
});

describe('admin API settings', () => {
  let dir: string;
  let cli: RunningCli | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-admin-cli-'));
  });
  after(async () => {
    await kill(cli);
    await rm(dir, { recursive: true, force: true });
  });

  it('is off without a token file: /api answers 404 and /metrics needs no token', async () => {
    const s = await startServer({ listeners: [local], http: { port: 0, host: '127.0.0.1' } });
    try {
      const call = api(() => `http://127.0.0.1:${s.server.httpAddress()!.port}`);
      assert.equal((await call('GET', '/api/v1/clients')).status, 404);
      assert.equal((await call('GET', '/dashboard/')).status, 404);
      assert.equal((await call('GET', '/metrics', null)).status, 200);
    } finally {
      await s.close();
    }
  });

  it('refuses a token file that cannot be read or holds too short a token', async () => {
    await writeFile(join(dir, 'short.token'), 'abc\n');
    await assert.rejects(startServer({ listeners: [local], http: { port: 0, adminTokenFile: join(dir, 'short.token') } }), /http\.adminTokenFile: .* at least 16 characters/);
    await assert.rejects(startServer({ listeners: [local], http: { port: 0, adminTokenFile: join(dir, 'missing.token') } }), /http\.adminTokenFile: cannot read/);
  });

  it('takes the token file from ARBORMQ_HTTP_ADMIN_TOKEN_FILE, and ARBORMQ_HOST leaves such an endpoint on loopback', async () => {
    await writeFile(join(dir, 'file-http.json'), JSON.stringify({ http: { port: 9100 } }));
    const { server } = await loadConfig({}, { ARBORMQ_CONFIG: join(dir, 'file-http.json'), ARBORMQ_HTTP_ADMIN_TOKEN_FILE: 'admin.token', ARBORMQ_HOST: '0.0.0.0' }, dir);
    assert.deepEqual(server.http, { port: 9100, adminTokenFile: join(dir, 'admin.token') });
    const plain = await loadConfig({}, { ARBORMQ_CONFIG: join(dir, 'file-http.json'), ARBORMQ_HOST: '0.0.0.0' }, dir);
    assert.deepEqual(plain.server.http, { port: 9100, host: '0.0.0.0' });
  });

  it('the arbormq command serves it from the config file, on loopback though --host says 0.0.0.0', async () => {
    await writeFile(join(dir, 'admin.token'), TOKEN);
    await writeFile(join(dir, 'arbormq.json'), JSON.stringify({ http: { port: 0, adminTokenFile: 'admin.token' } }));
    cli = await startCli(['-c', join(dir, 'arbormq.json'), '--port', '0', '--host', '0.0.0.0', '--memory'], { expect: 2 });
    const line = JSON.parse(cli.logs.find((l) => l.includes('"protocol":"http"'))!);
    assert.equal(line.address, '127.0.0.1');
    assert.deepEqual(line.paths, ['/metrics', '/health', '/api/v1/', '/dashboard']);
    const call = api(() => `http://127.0.0.1:${cli!.ports.get('http')}`);
    const c = await connectClient(`mqtt://127.0.0.1:${cli.ports.get('mqtt')}`, { clientId: 'via-cli', protocolVersion: 5 });
    assert.equal((await call('GET', '/api/v1/clients/via-cli')).body.clientId, 'via-cli');
    assert.equal((await call('GET', '/api/v1/clients/via-cli', null)).status, 401);
    await c.endAsync();
    assert.equal(await cli.stop(), 0);
  });
});
