import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectClient } from '../helpers/broker.js';
import { local, startServer, type TestServer } from '../helpers/server.js';
import { passwd } from '../../host/node/passwd-command.js';
import { PasswordFile } from '../../host/node/password-file.js';
import { Peer } from '../helpers/peer.js';
import { until } from '../helpers/wait.js';

const BIN = fileURLToPath(new URL('../../bin/arbormq.js', import.meta.url));
const hasMosquittoPasswd = spawnSync('sh', ['-c', 'command -v mosquitto_passwd']).status === 0;

/** Runs `arbormq passwd` in-process with `input` on a non-terminal stdin; resolves with exit code and stderr. */
async function runPasswd(args: string[], input = ''): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const sink = (write: (s: string) => void) =>
    new Writable({
      write(chunk, _enc, done) {
        write(String(chunk));
        done();
      },
    });
  const code = await passwd(args, {
    stdin: Readable.from([input]) as unknown as NodeJS.ReadStream,
    stdout: sink(() => undefined),
    stderr: sink((s) => (stderr += s)),
  });
  return { code, stderr };
}

describe('arbormq passwd', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-passwd-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('creates the file readable by its owner only, reading the password from stdin, and verifies it', async () => {
    const file = join(dir, 'create');
    assert.equal((await runPasswd([file, 'alice'], 'wonderland\n')).code, 0);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.match(await readFile(file, 'utf8'), /^alice:\$7\$10000\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+\n$/);
    const users = await PasswordFile.load(file);
    assert.equal(await users.verify('alice', new TextEncoder().encode('wonderland')), true);
    assert.equal(await users.verify('alice', new TextEncoder().encode('Wonderland')), false);
    assert.equal(await users.verify('bob', new TextEncoder().encode('wonderland')), false);
  });

  it('changes one user, deletes one with -D, and leaves the other lines as they were', async () => {
    const file = join(dir, 'edit');
    await runPasswd([file, 'alice'], 'one');
    await runPasswd([file, 'bob'], 'two');
    const bobLine = (await readFile(file, 'utf8')).split('\n')[1];
    await runPasswd(['-I', '5', file, 'alice'], 'three');
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    assert.match(lines[0]!, /^alice:\$7\$5\$/);
    assert.equal(lines[1], bobLine);
    assert.equal((await runPasswd(['-D', file, 'alice'])).code, 0);
    assert.deepEqual((await readFile(file, 'utf8')).trim().split('\n'), [bobLine]);
    const missing = await runPasswd(['-D', file, 'alice']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /"alice" is not in/);
  });

  it('refuses an empty password, a user name with ":" and a missing argument', async () => {
    const file = join(dir, 'bad');
    assert.equal((await runPasswd([file, 'alice'], '\n')).code, 1);
    assert.equal((await runPasswd([file, 'a:b'], 'x')).code, 2);
    assert.equal((await runPasswd([file], 'x')).code, 2);
  });

  it('works as a command: `arbormq passwd FILE USER` with the password on stdin', () => {
    const file = join(dir, 'command');
    const r = spawnSync(process.execPath, [BIN, 'passwd', file, 'carol'], { input: 'secret\n', encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const help = spawnSync(process.execPath, [BIN, 'passwd', '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: arbormq passwd/);
  });

  it('reads a password file written by mosquitto_passwd', { skip: hasMosquittoPasswd ? false : 'mosquitto_passwd not installed' }, async () => {
    const file = join(dir, 'mosquitto');
    const r = spawnSync('mosquitto_passwd', ['-c', '-b', file, 'dave', 'from-mosquitto'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const users = await PasswordFile.load(file);
    assert.equal(await users.verify('dave', new TextEncoder().encode('from-mosquitto')), true);
  });

  it('stops with the line and the reason for a hash it cannot use', async () => {
    assert.throws(() => PasswordFile.parse('alice:$7$101$c2FsdA==$aGFzaA==\nbob:$6$salt$hash\n', 'pw'), /pw line 2: .*\$7\$/);
  });
});

describe('authentication with a password file', () => {
  let dir: string;
  let s: TestServer;
  let file: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-auth-'));
    file = join(dir, 'passwd');
    await runPasswd([file, 'alice'], 'correct horse');
    await runPasswd([file, 'mallory-target'], 'right');
    s = await startServer({ listeners: [local], passwordFile: file, authFailureLimit: 4, authFailureWindowSeconds: 60 });
  });
  after(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts the right password over MQTT 3.1.1 and 5.0', async () => {
    for (const protocolVersion of [4, 5] as const) {
      await s.client(s.url('mqtt'), { username: 'alice', password: 'correct horse', protocolVersion });
    }
  });

  it('refuses a wrong password: CONNACK 0x86 (5.0) and 4 (3.1.1)', async () => {
    const v5 = await new Peer().tcp(s.port('mqtt'));
    assert.equal((await v5.handshake({ protocolVersion: 5, username: 'alice', password: Buffer.from('wrong') })).reasonCode, 0x86);
    await v5.expectClosed();
    const v4 = await new Peer().tcp(s.port('mqtt'));
    assert.equal((await v4.handshake({ protocolVersion: 4, username: 'nobody', password: Buffer.from('x') })).returnCode, 4);
    await v4.expectClosed();
  });

  it('refuses anonymous clients when a password file is set: CONNACK 0x87 (5.0) and 5 (3.1.1)', async () => {
    const v5 = await new Peer().tcp(s.port('mqtt'));
    assert.equal((await v5.handshake({ protocolVersion: 5 })).reasonCode, 0x87);
    const v4 = await new Peer().tcp(s.port('mqtt'));
    assert.equal((await v4.handshake({ protocolVersion: 4 })).returnCode, 5);
    await Promise.all([v5.expectClosed(), v4.expectClosed()]);
  });

  it('after too many failures from one address refuses its CONNECTs with 0x9F (5.0) and 3 (3.1.1), even with the right password', async () => {
    // The tests above failed 4 times from 127.0.0.1, which is the limit.
    const v5 = await new Peer().tcp(s.port('mqtt'));
    const refused = await v5.handshake({ protocolVersion: 5, username: 'mallory-target', password: Buffer.from('right') });
    assert.equal(refused.reasonCode, 0x9f);
    const v4 = await new Peer().tcp(s.port('mqtt'));
    assert.equal((await v4.handshake({ protocolVersion: 4, username: 'alice', password: Buffer.from('correct horse') })).returnCode, 3);
    assert.equal(/^arbormq_auth_rate_limited_total (\d+)$/m.exec(s.server.metricsText())?.[1], '2');
    await Promise.all([v5.expectClosed(), v4.expectClosed()]);
  });
});

describe('failed-login rate limit against parallel guessing', () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-guess-'));
    file = join(dir, 'passwd');
    // Slow hashes keep the first guesses in flight while the rest arrive.
    await runPasswd(['-I', '200000', file, 'victim'], 'right');
    await runPasswd(['-I', '1000', file, 'fleet'], 'shared');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const handshake = async (s: TestServer, protocolVersion: 4 | 5, username: string, password: string): Promise<number> => {
    const raw = await new Peer().tcp(s.port('mqtt'));
    // Each answer waits for its password check, and the slow hashes of the first guesses queue up.
    const connack = await raw.handshake({ protocolVersion, username, password: Buffer.from(password) }, 10_000);
    raw.destroy();
    return protocolVersion === 5 ? connack.reasonCode! : connack.returnCode!;
  };
  const metric = (s: TestServer, name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(s.server.metricsText())?.[1]);

  it('parallel password guessing attack: 100 wrong CONNECTs at once get 5 checks against a limit of 5; the rest and the right password sent meanwhile are refused with 0x9F / 3', async () => {
    const s = await startServer({ listeners: [local], passwordFile: file, authFailureLimit: 5, authFailureWindowSeconds: 60 });
    // Closed whatever happens: a server left open keeps the whole file from ending.
    try {
      const guesses = Array.from({ length: 100 }, (_, i) => handshake(s, i % 2 === 0 ? 5 : 4, 'victim', `guess-${i}`));
      await until(() => s.server.broker.metrics.packetsReceived >= 100, 'the 100 guesses to arrive', 10_000);
      const right = [handshake(s, 5, 'victim', 'right'), handshake(s, 4, 'victim', 'right')];
      const codes = await Promise.all(guesses);
      const checked = codes.filter((c) => c === 0x86 || c === 4).length;
      const limited = codes.filter((c) => c === 0x9f || c === 3).length;
      assert.equal(checked, 5, `codes: ${codes.join(',')}`);
      assert.equal(limited, 95);
      assert.deepEqual(await Promise.all(right), [0x9f, 3]);
      assert.equal(metric(s, 'arbormq_auth_failures_total'), 5);
      assert.equal(metric(s, 'arbormq_auth_rate_limited_total'), 97);
    } finally {
      await s.close();
    }
  });

  it('lets 30 clients behind one address log in at once with the right password, beyond the failure limit of 5', async () => {
    const s = await startServer({ listeners: [local], passwordFile: file, authFailureLimit: 5, authFailureWindowSeconds: 60 });
    const codes = await Promise.all(Array.from({ length: 30 }, (_, i) => handshake(s, i % 2 === 0 ? 5 : 4, 'fleet', 'shared')));
    assert.deepEqual(codes, Array(30).fill(0));
    assert.equal(metric(s, 'arbormq_auth_rate_limited_total'), 0);
    await s.close();
  });
});

describe('anonymous access and reloading', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-anon-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('allows anonymous clients by default without a password file, and refuses them with allowAnonymous false', async () => {
    const open = await startServer({ listeners: [local] });
    await open.client(open.url('mqtt'));
    await open.close();
    const closed = await startServer({ listeners: [local], allowAnonymous: false });
    const raw = await new Peer().tcp(closed.port('mqtt'));
    assert.equal((await raw.handshake({ protocolVersion: 5, username: 'claims-to-be-admin' })).reasonCode, 0x87);
    raw.destroy();
    await closed.close();
  });

  it('lets anonymous clients in beside password users when allowAnonymous is true', async () => {
    const file = join(dir, 'mixed');
    await runPasswd([file, 'alice'], 'pw');
    const s = await startServer({ listeners: [local], passwordFile: file, allowAnonymous: true });
    await s.client(s.url('mqtt'));
    await s.client(s.url('mqtt'), { username: 'alice', password: 'pw' });
    await assert.rejects(connectClient(s.url('mqtt'), { username: 'alice', password: 'nope' }), /Bad username or password/i);
    await s.close();
  });

  it('an address past its failed-login limit is refused with 0x9F also for an anonymous CONNECT that has nothing to check; anonymous clients from other addresses get in', async () => {
    const file = join(dir, 'limited');
    await runPasswd([file, 'alice'], 'pw');
    const s = await startServer({ listeners: [local], passwordFile: file, allowAnonymous: true, authFailureLimit: 2, authFailureWindowSeconds: 60 });
    for (let i = 0; i < 2; i++) {
      const guess = await new Peer().tcp(s.port('mqtt'), '127.0.0.3');
      assert.equal((await guess.handshake({ protocolVersion: 5, username: 'alice', password: Buffer.from('wrong') })).reasonCode, 0x86);
      await guess.expectClosed();
    }
    const anonymousThere = await new Peer().tcp(s.port('mqtt'), '127.0.0.3');
    assert.equal((await anonymousThere.handshake({ protocolVersion: 5 })).reasonCode, 0x9f);
    await anonymousThere.expectClosed();
    const anonymousElsewhere = await new Peer().tcp(s.port('mqtt'), '127.0.0.4');
    assert.equal((await anonymousElsewhere.handshake({ protocolVersion: 5 })).reasonCode, 0);
    anonymousElsewhere.destroy();
    await s.close();
  });

  it('takes a new password into use on reloadAccess (SIGHUP), and keeps the old rules if the file is broken', async () => {
    const file = join(dir, 'reload');
    await runPasswd([file, 'alice'], 'old');
    const s = await startServer({ listeners: [local], passwordFile: file, authFailureLimit: 0 });
    await runPasswd([file, 'alice'], 'new');
    await s.client(s.url('mqtt'), { username: 'alice', password: 'old' });
    await s.server.reloadAccess();
    await s.client(s.url('mqtt'), { username: 'alice', password: 'new' });
    await assert.rejects(connectClient(s.url('mqtt'), { username: 'alice', password: 'old' }), /Bad username or password/i);
    await writeFile(file, 'garbage\n');
    await assert.rejects(s.server.reloadAccess(), /passwordFile: .*line 1/);
    await s.client(s.url('mqtt'), { username: 'alice', password: 'new' });
    await s.close();
  });
});
