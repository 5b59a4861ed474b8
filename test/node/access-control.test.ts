// Access control against a client trying to get around it: reads checked per message (live, queued,
// retained, shared-group picks, after a reload or a restart), wills, and persistent sessions that
// belong to the user who created them. Every case through real sockets, in MQTT 3.1.1 and 5.0.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { IConnackPacket, IConnectPacket, IPublishPacket } from 'mqtt-packet';
import type { LogLevel } from '../../host/core/model/options.js';
import { LevelStore } from '../../host/node/level-store.js';
import { writePasswordFile } from '../helpers/access-files.js';
import { ackReason, collect, connectClient, expectSilence, received } from '../helpers/broker.js';
import { kill, startCli, type RunningCli } from '../helpers/cli.js';
import { grantedCodes, local, startServer, type TestServer } from '../helpers/server.js';
import { Peer } from '../helpers/peer.js';
import { until } from '../helpers/wait.js';

const VERSIONS = [
  { v: 4, label: '3.1.1', subackRefused: 0x80, connackRefused: 0x05 },
  { v: 5, label: '5.0', subackRefused: 0x87, connackRefused: 0x87 },
] as const;

const ACL = `
# anonymous clients
topic readwrite #
topic deny test/nosubscribe

user admin
topic readwrite #
topic readwrite $aws/#
topic readwrite $SYS/#

user alice
topic readwrite alice/#
topic read shared/#

user bob
topic readwrite bob/#
topic read shared/public/#

user carol
topic readwrite carol/#

pattern read clients/%c/#
pattern read users/%u/#
`;

/** Users admin, alice, bob and carol (password "pw") and the ACL above, in `dir`. */
async function writeAccessFiles(dir: string): Promise<void> {
  await writePasswordFile(join(dir, 'passwd'), ['admin', 'alice', 'bob', 'carol']);
  await writeFile(join(dir, 'acl'), ACL);
}

/** A server using the access files in `dir`, anonymous clients allowed; state in memory unless `dataDir`. */
function aclServer(dir: string, extra: { dataDir?: string; logs?: string[] } = {}): Promise<TestServer> {
  return startServer({
    listeners: [local],
    passwordFile: join(dir, 'passwd'),
    aclFile: join(dir, 'acl'),
    allowAnonymous: true,
    ...(extra.dataDir ? { dataDir: extra.dataDir } : { memory: true }),
    logger: (level: LogLevel, message: string, fields?: Record<string, unknown>) => extra.logs?.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
  });
}

const as = (s: TestServer, username: string | undefined, v: 4 | 5, options: IClientOptions = {}): Promise<MqttClient> =>
  s.client(s.url('mqtt'), { protocolVersion: v, ...(username ? { username, password: 'pw' } : {}), ...options });

/** A raw CONNECT with `options`; resolves with the CONNACK. */
async function rawConnect(port: number, v: 4 | 5, options: Partial<IConnectPacket>): Promise<{ raw: Peer; connack: IConnackPacket }> {
  const raw = await new Peer().tcp(port);
  const connack = await raw.handshake({ protocolVersion: v, ...options });
  return { raw, connack };
}

const code = (connack: IConnackPacket): number | undefined => connack.reasonCode ?? connack.returnCode;
const persistent = (v: 4 | 5) => (v === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {});
const topics = (client: MqttClient): string[] => received(client).map((m) => m.topic);

describe('ACL reads are checked for every message, as Mosquitto does', () => {
  let dir: string;
  let s: TestServer;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-reads-'));
    await writeAccessFiles(dir);
    s = await aclServer(dir);
  });
  afterEach(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const { v, label, subackRefused } of VERSIONS) {
    it(`grants # beside "topic deny test/nosubscribe", refuses test/nosubscribe itself (SUBACK 0x${subackRefused.toString(16)}), and never delivers the denied topic to # (${label})`, async () => {
      const anonymous = await as(s, undefined, v);
      assert.deepEqual(await grantedCodes(anonymous, ['#', 'test/nosubscribe', 'test/+'], 1), [1, subackRefused, 1]);
      const admin = await as(s, 'admin', v);
      await admin.publishAsync('test/nosubscribe', 'secret', { qos: 1 });
      await admin.publishAsync('test/ok', 'public', { qos: 1 });
      // Messages of one publisher arrive in order: the denied one would have come first.
      const [first] = await collect(anonymous, 1);
      assert.equal(first!.topic, 'test/ok');
      assert.equal(first!.packet.qos, 1);
    });

    it(`never sends a # subscriber a retained message it may not read (${label})`, async () => {
      const admin = await as(s, 'admin', v);
      await admin.publishAsync('test/nosubscribe', 'retained secret', { qos: 1, retain: true });
      await admin.publishAsync('test/ok', 'retained public', { qos: 1, retain: true });
      const anonymous = await as(s, undefined, v);
      await anonymous.subscribeAsync('#', { qos: 1 });
      // Retained messages are sent right after SUBACK, before anything published later.
      await admin.publishAsync('test/marker', 'live', { qos: 1 });
      const got = await collect(anonymous, 2);
      assert.deepEqual(
        got.map((m) => [m.topic, m.packet.retain]),
        [
          ['test/ok', true],
          ['test/marker', false],
        ],
      );
    });

    it(`passes a $share group member that may not read over: another member gets each such message, none is lost (${label})`, async () => {
      // alice reads shared/#, bob only shared/public/#: both may join the group on shared/#.
      const alice = await as(s, 'alice', v);
      const bob = await as(s, 'bob', v);
      assert.deepEqual(await grantedCodes(alice, ['$share/g/shared/#'], 1), [1]);
      assert.deepEqual(await grantedCodes(bob, ['$share/g/shared/#'], 1), [1]);
      const admin = await as(s, 'admin', v);
      // Round-robin alone would hand bob every other private message.
      const sent = ['private', 'public'].flatMap((kind) => [...Array(10).keys()].map((i) => `shared/${kind}/${i}`));
      for (const topic of sent) await admin.publishAsync(topic, topic, { qos: 1 });
      await until(() => received(alice).length + received(bob).length >= sent.length);
      assert.deepEqual(topics(bob).filter((t) => t.startsWith('shared/private/')), [], 'bob never gets what he may not read');
      assert.deepEqual([...topics(alice), ...topics(bob)].sort(), [...sent].sort(), 'each message reached exactly one member');
      assert.ok(topics(bob).length > 0, 'bob still gets his share of what he may read');
    });

    it(`decides pattern rules per message by the reader's client id (%c) and user name (%u) (${label})`, async () => {
      const alice = await as(s, 'alice', v, { clientId: 'dev1' });
      assert.deepEqual(await grantedCodes(alice, ['clients/+/state', 'users/+/inbox', 'clients/dev2/#', 'users/bob/#'], 1), [1, 1, subackRefused, subackRefused]);
      const admin = await as(s, 'admin', v);
      for (const topic of ['clients/dev2/state', 'users/bob/inbox', 'clients/dev1/state', 'users/alice/inbox']) await admin.publishAsync(topic, 'x', { qos: 1 });
      assert.deepEqual((await collect(alice, 2)).map((m) => m.topic), ['clients/dev1/state', 'users/alice/inbox']);
      await expectSilence(alice);
    });

    it(`lets a client publish and subscribe to $ topics its rules name ($aws/#), never through #, and keeps $SYS read-only (${label})`, async () => {
      const admin = await as(s, 'admin', v);
      assert.deepEqual(await grantedCodes(admin, ['#', '$aws/things/+/shadow/#', '$TopicA/#'], 1), [1, 1, subackRefused]);
      assert.equal(await ackReason(admin.publishAsync('$aws/things/t1/shadow/update', 'desired', { qos: 1 })), 0);
      // Not named by admin's rules: refused (5.0 0x87; 3.1.1 acknowledged and dropped).
      assert.equal(await ackReason(admin.publishAsync('$TopicA/B', 'x', { qos: 1 })), v === 5 ? 0x87 : 0);
      assert.equal(await ackReason(admin.publishAsync('$SYS/broker/version', 'fake', { qos: 1, retain: true })), v === 5 ? 0x87 : 0);
      const anonymous = await as(s, undefined, v);
      assert.equal(await ackReason(anonymous.publishAsync('$aws/things/t1/shadow/update', 'x', { qos: 1 })), v === 5 ? 0x87 : 0, '# grants no $ topic');
      await admin.publishAsync('plain/marker', 'end', { qos: 1 });
      const got = await collect(admin, 2);
      assert.deepEqual(
        got.map((m) => m.topic),
        ['$aws/things/t1/shadow/update', 'plain/marker'],
        'the $aws message once (by the filter naming it, not by #), nothing else',
      );
    });
  }
});

describe('wills do not get around the ACL or $SYS', () => {
  let dir: string;
  let s: TestServer;
  let logs: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-wills-'));
    await writeAccessFiles(dir);
    logs = [];
    s = await aclServer(dir, { logs });
  });
  afterEach(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const { v, label, connackRefused } of VERSIONS) {
    it(`refuses a CONNECT whose retained will goes to a topic the client may not write (CONNACK 0x${connackRefused.toString(16).padStart(2, '0')}) and never publishes it (${label})`, async () => {
      const admin = await as(s, 'admin', v);
      await admin.subscribeAsync(['secret/#', 'bob/#'], { qos: 1 });
      const will = { topic: 'secret/alarm', payload: Buffer.from('fake alarm'), qos: 1 as const, retain: true };
      const { raw, connack } = await rawConnect(s.port('mqtt'), v, { username: 'bob', password: Buffer.from('pw'), will });
      assert.equal(code(connack), connackRefused);
      assert.equal(connack.sessionPresent, false);
      await raw.expectClosed();
      // A will bob may write is still his to leave.
      const allowed = await rawConnect(s.port('mqtt'), v, { username: 'bob', password: Buffer.from('pw'), will: { ...will, topic: 'bob/status', retain: false } });
      assert.equal(code(allowed.connack), 0);
      allowed.raw.destroy();
      assert.deepEqual((await collect(admin, 1)).map((m) => m.topic), ['bob/status']);
      const later = await as(s, 'admin', v);
      await later.subscribeAsync('secret/#', { qos: 1 });
      await admin.publishAsync('secret/marker', 'x', { qos: 1 });
      assert.deepEqual((await collect(later, 1)).map((m) => [m.topic, m.packet.retain]), [['secret/marker', false]], 'no retained will on secret/alarm');
    });

    it(`refuses a will to $SYS at CONNECT, even for a user whose rules grant writing $SYS/# (${label})`, async () => {
      const admin = await as(s, 'admin', v);
      await admin.subscribeAsync('$SYS/broker/version', { qos: 1 });
      const will = { topic: '$SYS/broker/version', payload: Buffer.from('arbormq version 0.0.0-fake'), qos: 1 as const, retain: true };
      const { raw, connack } = await rawConnect(s.port('mqtt'), v, { username: 'admin', password: Buffer.from('pw'), will });
      assert.equal(code(connack), connackRefused);
      await raw.expectClosed();
      await expectSilence(admin);
    });

    it(`drops and logs a will that the rules in force when it is due no longer allow (ACL reloaded meanwhile) (${label})`, async () => {
      const admin = await as(s, 'admin', v);
      await admin.subscribeAsync('carol/#', { qos: 1 });
      const will = { topic: 'carol/status', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
      const { raw, connack } = await rawConnect(s.port('mqtt'), v, { username: 'carol', password: Buffer.from('pw'), will });
      assert.equal(code(connack), 0, 'allowed at CONNECT');
      await writeFile(join(dir, 'acl'), ACL.replace('user carol\ntopic readwrite carol/#', 'user carol\ntopic read carol/#'));
      await s.server.reloadAccess();
      raw.destroy();
      await until(() => logs.some((l) => l.includes('will message dropped')));
      assert.ok(logs.some((l) => l.includes('will message dropped') && l.includes('carol/status')), logs.join('\n'));
      await admin.publishAsync('carol/marker', 'x', { qos: 1 });
      assert.deepEqual((await collect(admin, 1)).map((m) => m.topic), ['carol/marker']);
    });
  }
});

describe('a persistent session belongs to the user who created it', () => {
  let dir: string;
  let s: TestServer;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-owner-'));
    await writeAccessFiles(dir);
    s = await aclServer(dir);
  });
  afterEach(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const { v, label, subackRefused, connackRefused } of VERSIONS) {
    it(`refuses bob alice's client identifier (CONNACK 0x${connackRefused.toString(16).padStart(2, '0')}, Session Present 0): her connection, session and queued messages stay hers (${label})`, async () => {
      const clientId = `alice-phone-${v}`;
      const alice = await as(s, 'alice', v, { clientId, clean: false, ...persistent(v) });
      await alice.subscribeAsync('alice/#', { qos: 1 });
      const bob = await as(s, 'bob', v);
      assert.deepEqual(await grantedCodes(bob, ['alice/#'], 1), [subackRefused], 'bob may not read alice/#');
      const admin = await as(s, 'admin', v);
      const bobAs = { clientId, username: 'bob', password: Buffer.from('pw'), ...persistent(v) };

      // While alice is connected: neither a resume nor a clean start takes her session or kicks her.
      for (const clean of [false, true]) {
        const { raw, connack } = await rawConnect(s.port('mqtt'), v, { ...bobAs, clean });
        assert.equal(code(connack), connackRefused, `clean ${clean}`);
        assert.equal(connack.sessionPresent, false);
        await raw.expectClosed();
      }
      await admin.publishAsync('alice/1', 'live', { qos: 1 });
      assert.deepEqual((await collect(alice, 1)).map((m) => m.payload.toString()), ['live'], 'alice is still connected and subscribed');

      // While alice is away: her queue stays hers.
      await alice.endAsync();
      await admin.publishAsync('alice/2', 'queued', { qos: 1 });
      for (const clean of [false, true]) {
        const { raw, connack } = await rawConnect(s.port('mqtt'), v, { ...bobAs, clean });
        assert.equal(code(connack), connackRefused, `clean ${clean}, alice offline`);
        assert.equal(connack.sessionPresent, false, 'no hint that the session exists');
        assert.equal(raw.packets.length, 0, 'nothing of alice is sent');
        await raw.expectClosed();
      }
      const back = await rawConnect(s.port('mqtt'), v, { clientId, clean: false, username: 'alice', password: Buffer.from('pw'), ...persistent(v) });
      assert.equal(code(back.connack), 0);
      assert.equal(back.connack.sessionPresent, true);
      const queued = (await back.raw.next('publish')) as IPublishPacket;
      assert.deepEqual([queued.topic, queued.payload.toString()], ['alice/2', 'queued']);
      back.raw.destroy();
    });

    it(`refuses an anonymous CONNECT for a user's client identifier, and a user's for an anonymous session (${label})`, async () => {
      const alice = await as(s, 'alice', v, { clientId: `mine-${v}`, clean: false, ...persistent(v) });
      const anonymous = await rawConnect(s.port('mqtt'), v, { clientId: `mine-${v}`, clean: false, ...persistent(v) });
      assert.equal(code(anonymous.connack), connackRefused);
      await anonymous.raw.expectClosed();
      const guest = await as(s, undefined, v, { clientId: `guest-${v}`, clean: false, ...persistent(v) });
      await guest.endAsync();
      const user = await rawConnect(s.port('mqtt'), v, { clientId: `guest-${v}`, clean: false, username: 'alice', password: Buffer.from('pw'), ...persistent(v) });
      assert.equal(code(user.connack), connackRefused);
      await user.raw.expectClosed();
      assert.equal(alice.connected, true);
    });
  }
});

describe('ACL changes apply to subscriptions made before them', () => {
  let dir: string;
  let cli: RunningCli | undefined;
  const clients: MqttClient[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-acl-change-'));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
    await kill(cli);
    cli = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('stops live and queued deliveries a reloaded ACL denies, after SIGHUP to the arbormq process (3.1.1 and 5.0)', async () => {
    const aclFile = join(dir, 'acl');
    const passwordFile = join(dir, 'passwd');
    await writePasswordFile(passwordFile, ['admin']);
    await writeFile(aclFile, 'topic readwrite #\nuser admin\ntopic readwrite #\n');
    cli = await startCli(['--port', '0', '--host', '127.0.0.1', '--memory'], {
      env: { ARBORMQ_ACL_FILE: aclFile, ARBORMQ_PASSWORD_FILE: passwordFile, ARBORMQ_ALLOW_ANONYMOUS: 'true' },
    });
    const url = `mqtt://127.0.0.1:${cli.ports.get('mqtt')}`;
    const connect = async (options: IClientOptions) => {
      const c = await connectClient(url, options);
      clients.push(c);
      return c;
    };
    const live = [await connect({ protocolVersion: 4 }), await connect({ protocolVersion: 5 })];
    for (const c of live) await c.subscribeAsync('#', { qos: 1 });
    const away = await connect({ protocolVersion: 4, clientId: 'away', clean: false });
    await away.subscribeAsync('#', { qos: 1 });
    await away.endAsync();
    const admin = await connect({ protocolVersion: 5, username: 'admin', password: 'pw' });
    await admin.publishAsync('news/1', 'before', { qos: 1 });
    for (const c of live) assert.deepEqual((await collect(c, 1)).map((m) => m.topic), ['news/1']);

    await writeFile(aclFile, 'topic readwrite #\ntopic deny news/#\nuser admin\ntopic readwrite #\n');
    cli.child.kill('SIGHUP');
    await until(() => cli!.logs.some((l) => l.includes('"msg":"reloaded"')));
    await admin.publishAsync('news/2', 'after', { qos: 1 });
    await admin.publishAsync('other/1', 'marker', { qos: 1 });
    for (const c of live) assert.deepEqual((await collect(c, 1)).map((m) => m.topic), ['other/1'], 'news/2 was not delivered');
    // "away" had news/1 queued under the old rules; it is not sent under the new ones.
    const back = await connect({ protocolVersion: 4, clientId: 'away', clean: false });
    assert.deepEqual((await collect(back, 1)).map((m) => m.topic), ['other/1']);
    await expectSilence(back);
  });

  it('applies the rules in force after a restart to restored sessions — subscriptions, queued messages and owners', async () => {
    const dataDir = join(dir, 'data');
    await writeAccessFiles(dir);
    const before = await aclServer(dir, { dataDir });
    const alice = await as(before, 'alice', 4, { clientId: 'alice-tablet', clean: false });
    await alice.subscribeAsync(['shared/#', 'alice/#'], { qos: 1 });
    await alice.endAsync();
    const admin = await as(before, 'admin', 4);
    await admin.publishAsync('shared/1', 'queued under the old rules', { qos: 1 });
    await before.close();

    await writeFile(join(dir, 'acl'), ACL.replace('topic read shared/#\n', ''));
    const second = await aclServer(dir, { dataDir });
    try {
      const bob = await rawConnect(second.port('mqtt'), 4, { clientId: 'alice-tablet', clean: false, username: 'bob', password: Buffer.from('pw') });
      assert.equal(code(bob.connack), 0x05, 'the owner was kept with the session');
      assert.equal(bob.connack.sessionPresent, false);
      const back = await rawConnect(second.port('mqtt'), 4, { clientId: 'alice-tablet', clean: false, username: 'alice', password: Buffer.from('pw') });
      assert.equal(back.connack.sessionPresent, true);
      const publisher = await as(second, 'admin', 4);
      await publisher.publishAsync('shared/2', 'live under the new rules', { qos: 1 });
      await publisher.publishAsync('alice/1', 'marker', { qos: 1 });
      const delivered = (await back.raw.next('publish')) as IPublishPacket;
      assert.equal(delivered.topic, 'alice/1', 'neither the queued nor the live shared/ message was delivered');
      back.raw.destroy();
    } finally {
      await second.close();
    }
  });

  it('lets the first user who resumes a session stored before owners were recorded claim it; others are refused', async () => {
    const dataDir = join(dir, 'data');
    const store = new LevelStore(dataDir);
    await store.open();
    await store.load();
    const sessions = new Map([
      ['old-device', { clientId: 'old-device', version: 4 as const, expiryInterval: 0xffffffff, disconnectedAt: Date.now(), subscriptions: [], will: null }],
    ]);
    await store.write({ sessions, retained: new Map(), messages: new Map(), deliveries: new Map(), incomingQos2: new Map(), marks: new Map() });
    await store.close();
    await writeAccessFiles(dir);
    const s = await aclServer(dir, { dataDir });
    try {
      const alice = await rawConnect(s.port('mqtt'), 4, { clientId: 'old-device', clean: false, username: 'alice', password: Buffer.from('pw') });
      assert.equal(alice.connack.sessionPresent, true);
      alice.raw.destroy();
      const bob = await rawConnect(s.port('mqtt'), 4, { clientId: 'old-device', clean: false, username: 'bob', password: Buffer.from('pw') });
      assert.equal(code(bob.connack), 0x05);
    } finally {
      await s.close();
    }
  });
});
