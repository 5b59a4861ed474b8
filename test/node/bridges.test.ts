// The Node server's bridges against real remotes: a second ArborMQ process (killed and restarted
// under load), in-process servers for TLS and WebSocket and for two brokers bridging to each other,
// and a real Mosquitto. The local side is an ArborServer with a LevelDB store.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { ServerBridgeOptions } from '../../host/node/bridges.js';
import type { LogLevel } from '../../host/core/model/options.js';
import { ackReason, collect, connectClient, expectOnly, expectSilence, received } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';
import { writePasswordFile } from '../helpers/access-files.js';
import { createPki, type TestPki } from '../helpers/certificates.js';
import { kill, startCli, type RunningCli } from '../helpers/cli.js';
import { skipWithoutMosquitto, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort, local, startServer, type TestServer } from '../helpers/server.js';

const QUICK_BACKOFF = { initialMs: 50, maxMs: 400 };

/** Log lines of an in-process server, as "level message {fields}". */
function memoryLog(): { lines: string[]; logger: (level: LogLevel, message: string, fields?: Record<string, unknown>) => void } {
  const lines: string[] = [];
  return { lines, logger: (level, message, fields) => void lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`) };
}

/** A local ArborServer with a LevelDB store in `dataDir` and the given bridges. */
function startLocal(dataDir: string, bridges: ServerBridgeOptions[], extra: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  return startServer({ listeners: [local], dataDir, bridges, shutdownTimeoutMs: 3000, ...extra });
}

const bridgeState = (s: TestServer, name = 'cloud') => s.server.bridgeReports().find((b) => b.name === name)!;
const waitOnline = async (s: TestServer, name = 'cloud'): Promise<void> => {
  await until(() => bridgeState(s, name).state === 'online', `bridge ${name} to be online`, 10_000);
  assert.equal(bridgeState(s, name).state, 'online', JSON.stringify(bridgeState(s, name)));
};
const payloads = (c: MqttClient): string[] => received(c).map((m) => m.payload.toString());

/** The numbers `seen` holds, each once, and whether they first arrived in increasing order. */
function firstArrivals(seen: string[]): number[] {
  const first: number[] = [];
  const had = new Set<string>();
  for (const p of seen) {
    if (had.has(p)) continue;
    had.add(p);
    first.push(Number(p));
  }
  return first;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Publishes `0 … n-1` at QoS 1 to `topic`, `batch` in flight at a time; `midway` runs once after `at` messages. */
async function publishLoad(c: MqttClient, topic: string, n: number, midway?: { at: number; run: () => Promise<void> }): Promise<void> {
  const batch = 50;
  for (let i = 0; i < n; i += batch) {
    if (midway && i === midway.at) await midway.run();
    await Promise.all(range(Math.min(batch, n - i)).map((j) => c.publishAsync(topic, String(i + j), { qos: 1 })));
  }
}

describe('bridges of the Node server, to a second ArborMQ process', () => {
  let dir: string;
  let remote: RunningCli | undefined;
  let remotePort: number;
  const startRemote = async (port: number): Promise<void> => {
    remote = await startCli(['--port', String(port), '--host', '127.0.0.1', '--data-dir', join(dir, 'remote')], { env: { ARBORMQ_MAX_QUEUED_MESSAGES: '10000' } });
    remotePort = remote.ports.get('mqtt')!;
  };
  const cloud = (topics: ServerBridgeOptions['topics'], extra: Partial<ServerBridgeOptions> = {}): ServerBridgeOptions => ({
    name: 'cloud',
    url: `mqtt://127.0.0.1:${remotePort}`,
    clientId: 'site-1',
    backoff: QUICK_BACKOFF,
    topics,
    ...extra,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-bridges-'));
    await startRemote(0);
  });
  after(async () => {
    await kill(remote);
    await rm(dir, { recursive: true, force: true });
  });

  it("carries topics out and in with Mosquitto's prefix semantics, and leaves the rest alone", async () => {
    const a = await startLocal(join(dir, 'a1'), [
      cloud([
        { filter: 'sensors/#', direction: 'out', localPrefix: 'site1/', remotePrefix: 'cloud/site1/' },
        { filter: 'commands/#', direction: 'in', localPrefix: 'local/', remotePrefix: 'cloud/' },
        { filter: '', direction: 'out', localPrefix: 'status', remotePrefix: 'cloud/status/site1' },
      ]),
    ]);
    const sink = await connectClient(`mqtt://127.0.0.1:${remotePort}`, { protocolVersion: 5 });
    try {
      await sink.subscribeAsync(['cloud/#'], { qos: 1 });
      await waitOnline(a);
      const app = await a.client(a.url('mqtt'), { protocolVersion: 5 });
      await app.subscribeAsync('local/#', { qos: 1 });
      await app.publishAsync('site1/sensors/t1', '21.5', { qos: 1 });
      await app.publishAsync('elsewhere/sensors/t1', 'not carried', { qos: 1 });
      await app.publishAsync('status', 'up', { qos: 1 });
      const out = await collect(sink, 2, 5000);
      assert.deepEqual(out.map((m) => `${m.topic}=${m.payload}`).sort(), ['cloud/site1/sensors/t1=21.5', 'cloud/status/site1=up']);
      await app.publishAsync('site1/sensors/marker', 'end', { qos: 1 });
      await expectOnly(sink, 'cloud/site1/sensors/marker=end');
      await sink.publishAsync('cloud/commands/reboot', 'now', { qos: 1 });
      const [inbound] = await collect(app, 1, 5000);
      assert.equal(`${inbound!.topic}=${inbound!.payload}`, 'local/commands/reboot=now');
      // The marker that stops loops travels with the message.
      assert.ok(out[0]!.packet.properties?.userProperties?.['arbormq-via'], 'the carried message names the broker it came from');
    } finally {
      await sink.endAsync();
      await a.close();
    }
  });

  it('queues in LevelDB while the remote is away: reported in $SYS, /metrics and the log, kept across a restart of the local server, delivered in order', async () => {
    const port = remotePort;
    await remote!.stop();
    const log = memoryLog();
    const options = { logger: log.logger, sysInterval: 1, http: { port: 0, host: '127.0.0.1' } };
    const bridges = [cloud([{ filter: 'q/#', direction: 'out' }])];
    let a = await startLocal(join(dir, 'a2'), bridges, options);
    try {
      const app = await a.client(a.url('mqtt'), { protocolVersion: 5 });
      for (const i of range(20)) await app.publishAsync(`q/${i}`, String(i), { qos: 1 });
      await until(() => bridgeState(a).queued === 20 && bridgeState(a).state === 'waiting');
      assert.deepEqual({ ...bridgeState(a), error: undefined }, { name: 'cloud', url: `mqtt://127.0.0.1:${port}`, clientId: 'site-1', state: 'waiting', attempts: bridgeState(a).attempts, queued: 20, sent: 0, received: 0, error: undefined });
      assert.match(bridgeState(a).error!, /ECONNREFUSED/);

      const watcher = await a.client(a.url('mqtt'), { protocolVersion: 5 });
      await watcher.subscribeAsync('$SYS/broker/bridges/#', { qos: 0 });
      await until(() => received(watcher).some((m) => m.topic === '$SYS/broker/bridges/cloud/queued' && m.payload.toString() === '20'), 'the queued count in $SYS', 5000);
      const sys = new Map(received(watcher).map((m) => [m.topic, m.payload.toString()]));
      assert.equal(sys.get('$SYS/broker/bridges/cloud/connected'), '0');
      assert.match(sys.get('$SYS/broker/bridges/cloud/state')!, /^(waiting|connecting)$/);

      const metrics = await (await fetch(`http://127.0.0.1:${a.server.httpAddress()!.port}/metrics`)).text();
      assert.match(metrics, /^arbormq_bridge_up\{bridge="cloud"\} 0$/m);
      assert.match(metrics, /^arbormq_bridge_queued_messages\{bridge="cloud"\} 20$/m);
      assert.ok(log.lines.some((l) => l.startsWith('info bridge link down') && l.includes('"bridge":"cloud"')), log.lines.join('\n'));
      await a.close();

      await startRemote(port);
      const sink = await connectClient(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5 });
      await sink.subscribeAsync('q/#', { qos: 1 });
      a = await startLocal(join(dir, 'a2'), bridges, options);
      const got = await collect(sink, 20, 10_000);
      assert.deepEqual(
        got.map((m) => m.payload.toString()),
        range(20).map(String),
      );
      // The remote acknowledges once durable, which may be after its subscribers have the messages.
      await until(() => bridgeState(a).queued === 0 && bridgeState(a).sent === 20 && bridgeState(a).state === 'online', 'the queue sent and acknowledged');
      assert.ok(log.lines.some((l) => l.startsWith('info bridge online') && l.includes('"bridge":"cloud"')));
      const metricsAfter = await (await fetch(`http://127.0.0.1:${a.server.httpAddress()!.port}/metrics`)).text();
      assert.match(metricsAfter, /^arbormq_bridge_up\{bridge="cloud"\} 1$/m);
      assert.match(metricsAfter, /^arbormq_bridge_messages_total\{bridge="cloud",direction="out"\} 20$/m);
      await sink.endAsync();
    } finally {
      await a.close();
    }
  });

  it('the remote is killed and restarted under QoS 1 load: every message arrives, first arrivals in order', async () => {
    const port = remotePort;
    const n = 2000;
    const a = await startLocal(join(dir, 'a3'), [cloud([{ filter: 'load/#', direction: 'out' }])], { maxQueuedMessages: 10_000 });
    const sinkOptions = { clientId: 'load-sink', clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 3600 } };
    const sink = await connectClient(`mqtt://127.0.0.1:${port}`, sinkOptions);
    sink.on('error', () => undefined);
    let sinkAgain: MqttClient | undefined;
    try {
      await sink.subscribeAsync('load/#', { qos: 1 });
      await waitOnline(a);
      const app = await a.client(a.url('mqtt'), { protocolVersion: 5 });
      await publishLoad(app, 'load/x', n, {
        at: n / 4,
        run: async () => {
          await remote!.stop('SIGKILL');
        },
      });
      assert.ok(bridgeState(a).queued > 0, 'messages wait while the remote is dead');
      await startRemote(port);
      sinkAgain = await connectClient(`mqtt://127.0.0.1:${port}`, sinkOptions);
      const all = (): string[] => [...payloads(sink), ...payloads(sinkAgain!)];
      await until(() => new Set(all()).size === n, `all ${n} messages`, 30_000);
      const first = firstArrivals(all());
      assert.equal(first.length, n, `${n - first.length} messages lost`);
      assert.deepEqual(first, range(n), 'first arrivals in publish order');
      await until(() => bridgeState(a).queued === 0);
    } finally {
      await sink.endAsync(true);
      await sinkAgain?.endAsync();
      await a.close();
    }
  });
});

describe('bridges over TLS and WebSocket', () => {
  let pki: TestPki;
  let remote: TestServer;
  let dir: string;
  before(async () => {
    pki = await createPki();
    dir = await mkdtemp(join(tmpdir(), 'arbormq-bridges-tls-'));
    remote = await startServer({
      listeners: [
        { protocol: 'mqtts', ...local, certFile: pki.certFile, keyFile: pki.keyFile },
        { protocol: 'ws', ...local },
        { protocol: 'mqtt', ...local },
      ],
    });
  });
  after(async () => {
    await remote.close();
    await pki.remove();
    await rm(dir, { recursive: true, force: true });
  });

  for (const scheme of ['mqtts', 'ws'] as const) {
    it(`${scheme}:// carries messages both ways`, async () => {
      const a = await startLocal(join(dir, scheme), [
        {
          name: scheme,
          url: remote.url(scheme),
          clientId: `over-${scheme}`,
          ...(scheme === 'mqtts' ? { caFile: pki.caFile } : {}),
          backoff: QUICK_BACKOFF,
          topics: [{ filter: `${scheme}/#`, direction: 'both' }],
        },
      ]);
      try {
        const far = await remote.client(remote.url('mqtt'), { protocolVersion: 5 });
        await far.subscribeAsync(`${scheme}/#`, { qos: 1 });
        await waitOnline(a, scheme);
        const near = await a.client(a.url('mqtt'), { protocolVersion: 5 });
        await near.subscribeAsync(`${scheme}/#`, { qos: 1 });
        await near.publishAsync(`${scheme}/up`, 'from near', { qos: 1 });
        await far.publishAsync(`${scheme}/down`, 'from far', { qos: 1 });
        assert.deepEqual((await collect(far, 2, 5000)).map((m) => m.topic).sort(), [`${scheme}/down`, `${scheme}/up`]);
        assert.deepEqual((await collect(near, 2, 5000)).map((m) => m.topic).sort(), [`${scheme}/down`, `${scheme}/up`]);
        // No Local on both sides: neither message came back before a marker from each side.
        await Promise.all([near.publishAsync(`${scheme}/mark-near`, 'end', { qos: 1 }), far.publishAsync(`${scheme}/mark-far`, 'end', { qos: 1 })]);
        await expectOnly(far, `${scheme}/mark-near=end`, `${scheme}/mark-far=end`);
        await expectOnly(near, `${scheme}/mark-near=end`, `${scheme}/mark-far=end`);
      } finally {
        await a.close();
      }
    });
  }

  it('an mqtts:// remote whose certificate the bridge does not trust is never connected to', async () => {
    const a = await startLocal(join(dir, 'untrusted'), [
      { name: 'untrusted', url: remote.url('mqtts'), clientId: 'x', backoff: QUICK_BACKOFF, topics: [{ filter: 'u/#', direction: 'out' }] },
    ]);
    try {
      await until(() => bridgeState(a, 'untrusted').error !== undefined, 'the TLS error', 5000);
      assert.notEqual(bridgeState(a, 'untrusted').state, 'online');
      assert.match(bridgeState(a, 'untrusted').error!, /certificate/);
    } finally {
      await a.close();
    }
  });
});

describe('a bridge on a server with passwords and an ACL', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-bridge-acl-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('is the server\'s own client: no password or ACL applies to it, and nobody else may take its client identifier (0x85)', async () => {
    await writePasswordFile(join(dir, 'passwd'), ['alice']);
    // Alice may write out/# and read in/#; nothing else, and anonymous clients nothing at all.
    await writeFile(join(dir, 'acl'), 'user alice\ntopic write out/#\ntopic read in/#\n');
    const remote = await startServer({ listeners: [local] });
    const a = await startLocal(join(dir, 'data'), [{ name: 'cloud', url: remote.url('mqtt'), clientId: 'acl-site', backoff: QUICK_BACKOFF, topics: [{ filter: 'out/#', direction: 'out' }, { filter: 'in/#', direction: 'in' }] }], {
      passwordFile: join(dir, 'passwd'),
      aclFile: join(dir, 'acl'),
    });
    try {
      await waitOnline(a);
      const far = await remote.client(remote.url('mqtt'), { protocolVersion: 5 });
      await far.subscribeAsync('out/#', { qos: 1 });
      const alice = await a.client(a.url('mqtt'), { protocolVersion: 5, username: 'alice', password: 'pw' });
      await alice.subscribeAsync('in/#', { qos: 1 });
      await alice.publishAsync('out/report', 'r1', { qos: 1 });
      assert.equal((await collect(far, 1, 5000))[0]!.topic, 'out/report');
      await far.publishAsync('in/order', 'o1', { qos: 1 });
      assert.equal((await collect(alice, 1, 5000))[0]!.topic, 'in/order');
      await assert.rejects(
        connectClient(a.url('mqtt'), { protocolVersion: 5, username: 'alice', password: 'pw', clientId: 'bridge:cloud' }),
        (error: { code?: number }) => error.code === 0x85,
      );
      assert.equal(bridgeState(a).state, 'online', 'the bridge kept its session');
    } finally {
      await a.close();
      await remote.close();
    }
  });
  it("delivers what it brings in only to users the ACL lets read it, retained too, and carries out only what the publisher may write", async () => {
    await writePasswordFile(join(dir, 'passwd2'), ['alice', 'bob']);
    await writeFile(join(dir, 'acl2'), 'pattern write out/%u/#\npattern read in/%u/#\n');
    const remote = await startServer({ listeners: [local] });
    const a = await startLocal(join(dir, 'data2'), [{ name: 'cloud', url: remote.url('mqtt'), clientId: 'acl-site-2', backoff: QUICK_BACKOFF, topics: [{ filter: 'out/#', direction: 'out' }, { filter: 'in/#', direction: 'in' }] }], {
      passwordFile: join(dir, 'passwd2'),
      aclFile: join(dir, 'acl2'),
    });
    try {
      await waitOnline(a);
      const far = await remote.client(remote.url('mqtt'), { protocolVersion: 5 });
      await far.subscribeAsync('out/#', { qos: 1 });
      const alice = await a.client(a.url('mqtt'), { protocolVersion: 5, username: 'alice', password: 'pw' });
      const bob = await a.client(a.url('mqtt'), { protocolVersion: 5, username: 'bob', password: 'pw' });
      await alice.subscribeAsync('in/#', { qos: 1 });
      await bob.subscribeAsync('in/#', { qos: 1 });

      // One bridge connection carries both users' messages in order: each user's marker comes last.
      await far.publishAsync('in/bob/secret', 'b1', { qos: 1 });
      await far.publishAsync('in/alice/order', 'a1', { qos: 1 });
      await far.publishAsync('in/bob/end', 'b2', { qos: 1 });
      await expectOnly(alice, 'in/alice/order=a1');
      await expectOnly(bob, 'in/bob/secret=b1', 'in/bob/end=b2');

      await far.publishAsync('in/bob/state', 'bs', { qos: 1, retain: true });
      await far.publishAsync('in/alice/state', 'as', { qos: 1, retain: true });
      await collect(alice, 1, 5000);
      await collect(bob, 1, 5000);
      const late = await a.client(a.url('mqtt'), { protocolVersion: 5, username: 'alice', password: 'pw' });
      await late.subscribeAsync('in/#', { qos: 1 });
      await expectOnly(late, 'in/alice/state=as');
      await expectSilence(late);

      assert.equal(await ackReason(alice.publishAsync('out/bob/forged', 'f', { qos: 1 })), 0x87, 'PUBACK 0x87 Not authorized');
      await alice.publishAsync('out/alice/report', 'r', { qos: 1 });
      await expectOnly(far, 'out/alice/report=r');
    } finally {
      await a.close();
      await remote.close();
    }
  });
});

describe('two brokers that bridge to each other', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-bridge-loop-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('one bridge both ways: each message crosses once, none comes back (No Local)', async () => {
    const b = await startServer({ listeners: [local] });
    const a = await startLocal(join(dir, 'one'), [{ name: 'b', url: b.url('mqtt'), clientId: 'a', backoff: QUICK_BACKOFF, topics: [{ filter: 'both/#', direction: 'both' }] }]);
    try {
      await waitOnline(a, 'b');
      const [onA, onB] = await Promise.all([a.client(a.url('mqtt')), b.client(b.url('mqtt'))]);
      await Promise.all([onA.subscribeAsync('both/#', { qos: 1 }), onB.subscribeAsync('both/#', { qos: 1 })]);
      await onA.publishAsync('both/a', 'from a', { qos: 1 });
      await onB.publishAsync('both/b', 'from b', { qos: 1 });
      assert.deepEqual((await collect(onA, 2, 5000)).map((m) => m.topic).sort(), ['both/a', 'both/b']);
      assert.deepEqual((await collect(onB, 2, 5000)).map((m) => m.topic).sort(), ['both/a', 'both/b']);
      await Promise.all([onA.publishAsync('both/mark-a', 'end', { qos: 1 }), onB.publishAsync('both/mark-b', 'end', { qos: 1 })]);
      await expectOnly(onA, 'both/mark-a=end', 'both/mark-b=end');
      await expectOnly(onB, 'both/mark-a=end', 'both/mark-b=end');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('each broker bridging to the other: a message reaches both, and the bridges then fall silent (no loop)', async () => {
    const portA = await freePort();
    const loop = (name: string, url: string, clientId: string): ServerBridgeOptions => ({ name, url, clientId, backoff: QUICK_BACKOFF, topics: [{ filter: 'loop/#', direction: 'both' }] });
    const b = await startLocal(join(dir, 'b'), [loop('to-a', `mqtt://127.0.0.1:${portA}`, 'b')]);
    const a = await startServer({ listeners: [{ ...local, port: portA }], dataDir: join(dir, 'a'), bridges: [loop('to-b', b.url('mqtt'), 'a')] });
    try {
      await waitOnline(a, 'to-b');
      await waitOnline(b, 'to-a');
      const [onA, onB] = await Promise.all([a.client(a.url('mqtt')), b.client(b.url('mqtt'))]);
      await Promise.all([onA.subscribeAsync('loop/#', { qos: 1 }), onB.subscribeAsync('loop/#', { qos: 1 })]);
      await onA.publishAsync('loop/x', 'once', { qos: 1 });
      // Two links make two paths: B hears the message over each, and A hears each copy come back once —
      // A's publish, B's bridge pushing what A's bridge brought, A's bridge pulling what B's bridge brought.
      await collect(onA, 3, 5000);
      await collect(onB, 2, 5000);
      // A marker from A takes the same paths after them: it arrives as often, and nothing before it.
      await onA.publishAsync('loop/mark', 'end', { qos: 1 });
      await expectOnly(onA, 'loop/mark=end', 'loop/mark=end', 'loop/mark=end');
      await expectOnly(onB, 'loop/mark=end', 'loop/mark=end');
      // Each bridge carried the message and the marker once each way, and then the loop marker stopped them.
      // A bridge counts a message sent when the other side acknowledges it, once durable: maybe after its subscribers have it.
      const carried = (): number[][] => [a, b].map((s) => s.server.bridgeReports()[0]!).map((r) => [r.sent, r.received]);
      await until(() => carried().flat().every((n) => n >= 2), 'both bridges to count the marker');
      assert.deepEqual(carried(), [
        [2, 2],
        [2, 2],
      ]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('bridges to a real Mosquitto', { skip: skipWithoutMosquitto }, () => {
  let mosquitto: Mosquitto;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-bridge-mosquitto-'));
    mosquitto = await startMosquitto(['max_queued_messages 10000']);
  });
  after(async () => {
    await mosquitto?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it('carries both ways with prefixes, MQTT 5 and 3.1.1', async () => {
    for (const protocolVersion of [5, 4] as const) {
      const a = await startLocal(join(dir, `v${protocolVersion}`), [
        {
          name: 'mosquitto',
          url: mosquitto.url,
          clientId: `arbor-v${protocolVersion}`,
          protocolVersion,
          backoff: QUICK_BACKOFF,
          topics: [
            { filter: 'up/#', direction: 'out', remotePrefix: `v${protocolVersion}/site/` },
            { filter: 'down/#', direction: 'in', localPrefix: 'from-cloud/', remotePrefix: `v${protocolVersion}/` },
          ],
        },
      ]);
      const cloudClient = await connectClient(mosquitto.url, { protocolVersion: 5 });
      try {
        await cloudClient.subscribeAsync(`v${protocolVersion}/site/#`, { qos: 1 });
        await waitOnline(a, 'mosquitto');
        const app = await a.client(a.url('mqtt'), { protocolVersion: 5 });
        await app.subscribeAsync('from-cloud/#', { qos: 1 });
        await app.publishAsync('up/temp', '19', { qos: 1 });
        const [up] = await collect(cloudClient, 1, 5000);
        assert.equal(`${up!.topic}=${up!.payload}`, `v${protocolVersion}/site/up/temp=19`);
        await cloudClient.publishAsync(`v${protocolVersion}/down/open`, 'valve', { qos: 1 });
        const [down] = await collect(app, 1, 5000);
        assert.equal(`${down!.topic}=${down!.payload}`, 'from-cloud/down/open=valve');
      } finally {
        await cloudClient.endAsync();
        await a.close();
      }
    }
  });

  it('Mosquitto goes away under QoS 1 load and comes back: nothing is lost, first arrivals in order', async () => {
    const n = 2000;
    const a = await startLocal(join(dir, 'load'), [{ name: 'mosquitto', url: mosquitto.url, clientId: 'arbor-load', backoff: QUICK_BACKOFF, topics: [{ filter: 'm/#', direction: 'out' }] }], {
      maxQueuedMessages: 10_000,
    });
    const sinkOptions = { clientId: 'm-sink', clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 3600 } };
    const sink = await connectClient(mosquitto.url, sinkOptions);
    sink.on('error', () => undefined);
    let sinkAgain: MqttClient | undefined;
    try {
      await sink.subscribeAsync('m/#', { qos: 1 });
      await waitOnline(a, 'mosquitto');
      const app = await a.client(a.url('mqtt'), { protocolVersion: 5 });
      // SIGTERM: Mosquitto saves what it holds (the sink's queue) to its persistence file and goes.
      await publishLoad(app, 'm/x', n, { at: n / 4, run: () => mosquitto.stop('SIGTERM') });
      assert.ok(bridgeState(a, 'mosquitto').queued > 0, 'messages wait while Mosquitto is away');
      await mosquitto.restart();
      sinkAgain = await connectClient(mosquitto.url, sinkOptions);
      const all = (): string[] => [...payloads(sink), ...payloads(sinkAgain!)];
      await until(() => new Set(all()).size === n, `all ${n} messages`, 30_000);
      const first = firstArrivals(all());
      assert.equal(first.length, n, `${n - first.length} messages lost; bridge ${JSON.stringify(bridgeState(a, 'mosquitto'))}; mosquitto: ${mosquitto.log().slice(-3000)}`);
      assert.deepEqual(first, range(n), 'first arrivals in publish order');
    } finally {
      await sink.endAsync(true);
      await sinkAgain?.endAsync();
      await a.close();
    }
  });
});
