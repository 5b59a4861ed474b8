import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Acl } from '../../host/node/acl.js';
import { AclFileError, parseAcl } from '../../host/node/acl-file.js';
import { covers, intersection, levels } from '../../host/node/topic-filters.js';
import { collect, expectSilence } from '../helpers/broker.js';
import { grantedCodes, local, startServer, type TestServer } from '../helpers/server.js';
import { writePasswordFile } from '../helpers/access-files.js';
import { Peer } from '../helpers/peer.js';

const acl = (text: string): Acl => new Acl(parseAcl(text));
const user = (username: string | undefined, clientId = 'c1') => ({ username, clientId });

describe('topic filter relations', () => {
  it('covers: a filter covers another when every topic the second matches, the first matches too', () => {
    const yes: [string, string][] = [
      ['a/#', 'a'],
      ['a/#', 'a/+/b'],
      ['a/#', 'a/#'],
      ['a/+', 'a/+'],
      ['+/x', 'b/x'],
      ['#', '+/x'],
      ['$SYS/#', '$SYS/broker/uptime'],
    ];
    const no: [string, string][] = [
      ['a/#', '#'],
      ['a/+', 'a/#'],
      ['a/+', 'a/b/c'],
      ['a/b', 'a/+'],
      ['#', '$SYS/broker'],
      ['+/broker', '$SYS/broker'],
      ['a', 'a/#'],
    ];
    for (const [outer, inner] of yes) assert.equal(covers(levels(outer), levels(inner)), true, `${outer} covers ${inner}`);
    for (const [outer, inner] of no) assert.equal(covers(levels(outer), levels(inner)), false, `${outer} does not cover ${inner}`);
  });

  it('intersection: the filter matching exactly the topics both match, or null when none', () => {
    const cases: [string, string, string | null][] = [
      ['a/#', 'a', 'a'],
      ['a/#', 'a/#', 'a/#'],
      ['+/secret', 'a/#', 'a/secret'],
      ['a/+/c', 'a/b/+', 'a/b/c'],
      ['#', 'x/y', 'x/y'],
      ['#', '+/x', '+/x'],
      ['a/#', '+/b/#', 'a/b/#'],
      ['$SYS/#', '$SYS/+', '$SYS/+'],
      ['a/b', 'a/c', null],
      ['a/+', 'a/b/c', null],
      ['a/b/c', 'a/b', null],
      ['#', '$SYS/x', null],
      ['+/x', '$SYS/x', null],
      ['#', '$aws/things/#', null],
    ];
    for (const [a, b, expected] of cases) {
      assert.equal(intersection(levels(a), levels(b))?.join('/') ?? null, expected, `${a} ∩ ${b}`);
      assert.equal(intersection(levels(b), levels(a))?.join('/') ?? null, expected, `${b} ∩ ${a}`);
    }
  });
});

describe('ACL file semantics', () => {
  it('applies the lines before any "user" line to anonymous clients only', () => {
    const rules = acl('topic read public/#\nuser alice\ntopic alice/#\n');
    assert.equal(rules.canSubscribe(user(undefined), 'public/news'), true);
    assert.equal(rules.canPublish(user(undefined), 'public/news'), false);
    assert.equal(rules.canSubscribe(user('alice'), 'public/news'), false);
    assert.equal(rules.canPublish(user('alice'), 'alice/x'), true);
    assert.equal(rules.canSubscribe(user('alice'), 'alice/#'), true);
    assert.equal(rules.canSubscribe(user('bob'), 'alice/#'), false);
  });

  it('refuses a subscription only when no topic it could match is readable (Mosquitto checks each message)', () => {
    const rules = acl('user r\ntopic read a/#\ntopic read +/x\n');
    for (const filter of ['a/+/b', 'a/#', 'b/x', '+/x', '#', '+/+', '+/y']) assert.equal(rules.canSubscribe(user('r'), filter), true, filter);
    for (const filter of ['b/y', 'b/+/x', 'c/y/#']) assert.equal(rules.canSubscribe(user('r'), filter), false, filter);
    // +/x and # match no $ topic; $ topics need a rule that names them.
    assert.equal(rules.canSubscribe(user('r'), '$SYS/x'), false);
    assert.equal(rules.canSubscribe(user('r'), '$aws/x'), false);
  });

  it('grants # beside "topic deny test/nosubscribe" and refuses test/nosubscribe itself; reads are judged per topic', () => {
    const rules = acl('topic readwrite #\ntopic deny test/nosubscribe\n');
    assert.equal(rules.canSubscribe(user(undefined), '#'), true);
    assert.equal(rules.canSubscribe(user(undefined), 'test/+'), true);
    assert.equal(rules.canSubscribe(user(undefined), 'test/nosubscribe'), false);
    assert.equal(rules.canRead(user(undefined), 'test/other'), true);
    assert.equal(rules.canRead(user(undefined), 'test/nosubscribe'), false);
    assert.equal(rules.canPublish(user(undefined), 'test/nosubscribe'), false);
  });

  it('reaches $ topics only through rules that name them: # does not, $aws/# does, and $SYS is a topic like others here', () => {
    const rules = acl('topic readwrite #\ntopic readwrite $aws/#\n');
    assert.equal(rules.canPublish(user(undefined), '$aws/things/t1/shadow/update'), true);
    assert.equal(rules.canRead(user(undefined), '$aws/things/t1/shadow/update'), true);
    assert.equal(rules.canSubscribe(user(undefined), '$aws/things/+/shadow/#'), true);
    assert.equal(rules.canPublish(user(undefined), '$TopicA/B'), false);
    assert.equal(rules.canRead(user(undefined), '$TopicA/B'), false);
    assert.equal(rules.canSubscribe(user(undefined), '$TopicA/#'), false);
  });

  it('judges a $share subscription by its topic filter', () => {
    const rules = acl('user r\ntopic read a/#\n');
    assert.equal(rules.canSubscribe(user('r'), '$share/g/a/b'), true);
    assert.equal(rules.canSubscribe(user('r'), '$share/g/#'), true);
    assert.equal(rules.canSubscribe(user('r'), '$share/a/b/c'), false, 'the share name is not a topic level');
  });

  it('lets deny lines win over grants, for publishing and reading, and refuses subscriptions that reach only denied topics', () => {
    const rules = acl('user u\ntopic readwrite a/#\ntopic deny a/secret/#\n');
    assert.equal(rules.canPublish(user('u'), 'a/public'), true);
    assert.equal(rules.canPublish(user('u'), 'a/secret/x'), false);
    assert.equal(rules.canRead(user('u'), 'a/secret'), false);
    assert.equal(rules.canRead(user('u'), 'a/secret/x/y'), false);
    assert.equal(rules.canRead(user('u'), 'a/public'), true);
    assert.equal(rules.canSubscribe(user('u'), 'a/public/#'), true);
    assert.equal(rules.canSubscribe(user('u'), 'a/#'), true);
    assert.equal(rules.canSubscribe(user('u'), 'a/+/x'), true);
    assert.equal(rules.canSubscribe(user('u'), 'a/secret'), false);
    assert.equal(rules.canSubscribe(user('u'), 'a/secret/+/#'), false);
  });

  it('gives subjects with the same lines one shared read answer per topic, and each its own where a pattern matches the topic', () => {
    const plain = acl('topic read public/#\nuser alice\ntopic read alice/#\nuser bob\ntopic read alice/#\n');
    assert.equal(plain.readCheck(user('alice', 'x')).shared, plain.readCheck(user('bob', 'y')).shared, 'same lines, one shared answer');
    assert.notEqual(plain.readCheck(user('alice', 'x')).shared, plain.readCheck(user(undefined, 'x')).shared);
    const patterned = acl('topic read public/#\nuser alice\ntopic read alice/#\npattern read clients/%c/#\npattern deny alice/%c/secret\n');
    assert.equal(patterned.readCheck(user('alice', 'x')).shared, patterned.readCheck(user('alice', 'y')).shared);
    assert.equal(patterned.readCheck(user('alice', 'x')).own('clients/y/state'), false);
    assert.equal(patterned.readCheck(user('alice', 'y')).own('clients/y/state'), true, '%c makes their answers differ');
    const check = patterned.readCheck(user('alice', 'x'));
    const read = (topic: string) => check.shared(topic) ?? check.own(topic);
    assert.equal(check.shared('alice/a'), true, 'no pattern matches alice/a: one answer for every alice');
    assert.equal(check.shared('clients/x/state'), undefined, 'a %c pattern matches: the answer is each client\'s');
    assert.deepEqual(
      ['alice/a', 'clients/x/state', 'clients/x', 'clients/y/state', 'public/a', 'alice/x/secret', 'alice/y/secret'].map(read),
      [true, true, true, false, false, false, true],
    );
  });

  it('applies a pattern to a topic only for the client id and user name its %c and %u levels hold (every place they repeat)', () => {
    const rules = acl('pattern read %u/%c/%c\npattern readwrite +/%u/#\n');
    assert.equal(rules.canRead(user('u', 'c'), 'u/c/c'), true);
    assert.equal(rules.canRead(user('u', 'c'), 'u/c/d'), false, 'both %c levels must hold the client id');
    assert.equal(rules.canRead(user('v', 'c'), 'u/c/c'), false);
    assert.equal(rules.canRead(user(undefined, 'c'), 'u/c/c'), false, 'no user name, no %u pattern');
    assert.equal(rules.canPublish(user('u', 'c'), 'x/u/y/z'), true);
    assert.equal(rules.canPublish(user('u', 'c'), '$x/u/y'), false, 'a first-level + leaves $ topics alone');
    assert.equal(rules.canRead(user('', 'c'), '/c/c'), false, 'an empty value never fills a level');
  });

  it('distinguishes read, write and readwrite', () => {
    const rules = acl('user u\ntopic read r\ntopic write w\ntopic rw\n');
    assert.deepEqual(
      ['r', 'w', 'rw'].map((t) => [rules.canSubscribe(user('u'), t), rules.canPublish(user('u'), t)]),
      [
        [true, false],
        [false, true],
        [true, true],
      ],
    );
  });

  it('substitutes %c and %u in pattern lines for every client, but never a value that would change the levels', () => {
    const rules = acl('pattern readwrite clients/%c/#\npattern read users/%u\n');
    assert.equal(rules.canPublish(user('alice', 'dev-1'), 'clients/dev-1/state'), true);
    assert.equal(rules.canPublish(user('alice', 'dev-1'), 'clients/dev-2/state'), false);
    assert.equal(rules.canSubscribe(user('alice', 'dev-1'), 'users/alice'), true);
    assert.equal(rules.canSubscribe(user(undefined, 'dev-1'), 'users/alice'), false);
    assert.equal(rules.canPublish(user('alice', 'dev-2/../x'), 'clients/dev-2/../x/y'), false);
    assert.equal(rules.canSubscribe(user('alice', '#'), 'clients/#'), false);
    assert.equal(rules.canSubscribe(user('a+b', 'c'), 'users/a+b'), false);
  });

  it('stops at an unusable line with its number and the reason', () => {
    assert.throws(() => parseAcl('topic read a/#\nfoo bar\n', 'acl'), (e: Error) => e instanceof AclFileError && /acl line 2: unknown keyword "foo"/.test(e.message));
    assert.throws(() => parseAcl('topic read a/#/b\n', 'acl'), /acl line 1: "a\/#\/b" is not a valid topic filter/);
    assert.throws(() => parseAcl('user\n', 'acl'), /acl line 1: "user" needs a user name/);
    assert.throws(() => parseAcl('pattern read a/x%c\n', 'acl'), /whole topic level/);
    assert.throws(() => parseAcl('topic read\n', 'acl'), /needs a topic filter/);
  });

  it('reads a topic filter with spaces when the access word is given', () => {
    const rules = acl('topic read my topic/#\n');
    assert.equal(rules.canSubscribe(user(undefined), 'my topic/x'), true);
  });
});

describe('ACL enforced by the broker', () => {
  let dir: string;
  let s: TestServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-acl-'));
    const passwords = join(dir, 'passwd');
    await writePasswordFile(passwords, ['reader', 'writer']);
    const aclFile = join(dir, 'acl');
    await writeFile(
      aclFile,
      ['# sensors', 'user reader', 'topic read sensors/#', 'topic read $SYS/#', 'user writer', 'topic write sensors/#', 'topic readwrite $SYS/#', 'pattern readwrite own/%u/#'].join('\n'),
    );
    s = await startServer({ listeners: [local], passwordFile: passwords, aclFile, allowAnonymous: false, sysInterval: 60 });
  });
  after(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses subscriptions that can read nothing with SUBACK 0x87 (5.0), a $share of them too, and grants # to a reader of some topics', async () => {
    const reader = await s.client(s.url('mqtt'), { username: 'reader', password: 'pw', protocolVersion: 5 });
    assert.deepEqual(
      await grantedCodes(reader, ['sensors/+/temp', '#', '$share/g/#', '$share/g/sensors/#', 'other', '$share/g/other/#', 'own/reader/x', 'own/writer/x'], 1),
      [1, 1, 1, 1, 0x87, 0x87, 1, 0x87],
    );
  });

  it('refuses denied subscriptions with SUBACK 0x80 (3.1.1)', async () => {
    const raw = await new Peer().tcp(s.port('mqtt'));
    await raw.handshake({ protocolVersion: 4, username: 'writer', password: Buffer.from('pw') });
    raw.sendPacket({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'sensors/#', qos: 0 }, { topic: 'own/writer/#', qos: 0 }] });
    const suback = (await raw.next('suback')) as { granted: number[] };
    assert.deepEqual(suback.granted, [0x80, 0]);
    raw.destroy();
  });

  it('drops a denied publish: PUBACK 0x87 for 5.0, a normal PUBACK and no delivery for 3.1.1', async () => {
    const reader = await s.client(s.url('mqtt'), { username: 'reader', password: 'pw', protocolVersion: 5 });
    await reader.subscribeAsync('sensors/#');
    const v5 = await s.client(s.url('mqtt'), { username: 'reader', password: 'pw', protocolVersion: 5 });
    await assert.rejects(v5.publishAsync('sensors/a', 'not mine to write', { qos: 1 }), /Not authorized|135/i);
    const v4 = await s.client(s.url('mqtt'), { username: 'reader', password: 'pw', protocolVersion: 4 });
    await v4.publishAsync('sensors/a', 'dropped', { qos: 1 });
    await expectSilence(reader);
    const writer = await s.client(s.url('mqtt'), { username: 'writer', password: 'pw', protocolVersion: 4 });
    const got = collect(reader, 1);
    await writer.publishAsync('sensors/a', 'allowed', { qos: 1 });
    assert.equal((await got)[0]!.payload.toString(), 'allowed');
  });

  it('never lets a client publish to $SYS, even one the ACL grants write on it', async () => {
    const reader = await s.client(s.url('mqtt'), { username: 'reader', password: 'pw', protocolVersion: 5 });
    await reader.subscribeAsync('$SYS/broker/version');
    const [version] = await collect(reader, 1);
    assert.match(version!.payload.toString(), /^arbormq version /);
    const writer = await s.client(s.url('mqtt'), { username: 'writer', password: 'pw', protocolVersion: 5 });
    await assert.rejects(writer.publishAsync('$SYS/broker/version', 'fake', { qos: 1, retain: true }), /Not authorized|135/i);
    await expectSilence(reader);
  });
});
