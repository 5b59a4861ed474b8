import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { emptyBatch, type StoredSession } from '../../host/core/model/store.js';
import { LevelStore } from '../../host/node/level-store.js';
import { collect, connectClient, expectSilence, type ServerTestBroker, startBroker } from '../helpers/broker.js';
import { withoutTimerOverflow } from '../helpers/warnings.js';
import { pace, until } from '../helpers/wait.js';

const DAY_MS = 24 * 3600 * 1000;

/** Waits until the broker holds `clientId`'s session with no connection. */
const disconnected = (b: ServerTestBroker, clientId: string): Promise<void> => until(() => b.server.broker.sessions.get(clientId)?.outlet === null);

describe('deadlines across a restart (LevelDB)', () => {
  let dir: string;
  let started: ServerTestBroker[];
  /** A broker on `dir`; one a failed test left open is closed after it. */
  const startOnDir = async (): Promise<ServerTestBroker> => {
    const b = await startBroker({ dataDir: dir });
    started.push(b);
    return b;
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-deadlines-'));
    started = [];
  });
  afterEach(async () => {
    await Promise.all(started.map((b) => b.server.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps a session whose DISCONNECT raised its expiry to 999,999,999 s across a restart, with its subscriptions and queued messages [MQTT-3.14.2-2]', () =>
    withoutTimerOverflow(async () => {
      const first = await startOnDir();
      const opts = { protocolVersion: 5 as const, clientId: 'long-restart', clean: false, properties: { sessionExpiryInterval: 99_999 } };
      const sub = await connectClient(first.url, opts);
      await sub.subscribeAsync('long/#', { qos: 1 });
      await sub.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 999_999_999 } });
      await disconnected(first, 'long-restart');
      const pub = await first.client({ protocolVersion: 5 });
      await pub.publishAsync('long/queued', 'kept', { qos: 1, properties: { messageExpiryInterval: 0xffffffff } });
      await first.close();

      const second = await startOnDir();
      const session = second.server.broker.sessions.get('long-restart');
      assert.ok(session, 'the session is back');
      assert.equal(Math.round(session.endsAt - session.disconnectedAt), 999_999_999_000, 'it still ends 999,999,999 s after its disconnection');
      const back = await connectClient(second.url, { ...opts, properties: {} });
      const [queued] = await collect(back, 1);
      assert.equal(queued!.payload.toString(), 'kept');
      const left = queued!.packet.properties?.messageExpiryInterval;
      assert.ok(left !== undefined && left <= 0xffffffff && left >= 0xffffffff - 5, `Message Expiry left: ${left}`);
      const pub2 = await second.client();
      await pub2.publishAsync('long/live', 'subscribed still', { qos: 1 });
      assert.equal((await collect(back, 1))[0]!.topic, 'long/live');
      await back.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
      await second.close();
    }));

  it('counts a restored session’s remaining time from its stored disconnection, whatever its size; 0xFFFFFFFF never ends', () =>
    withoutTimerOverflow(async () => {
      // Written straight into the store: sessions disconnected 30 days ago.
      const store = new LevelStore(dir);
      await store.open();
      await store.load();
      const batch = emptyBatch();
      const disconnectedAt = Date.now() - 30 * DAY_MS;
      const stored = (clientId: string, expiryInterval: number): StoredSession => ({
        clientId,
        version: 5,
        expiryInterval,
        disconnectedAt,
        subscriptions: [{ filter: `old/${clientId}`, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 }],
        will: null,
      });
      const sessions = {
        'over-29-days': stored('over-29-days', 29 * 24 * 3600),
        'over-31-days': stored('over-31-days', 31 * 24 * 3600),
        'long': stored('long', 999_999_999),
        'never': stored('never', 0xffffffff),
      };
      for (const [id, s] of Object.entries(sessions)) batch.sessions.set(id, s);
      await store.write(batch);
      await store.close();

      const b = await startOnDir();
      const broker = b.server.broker;
      assert.equal(broker.sessions.has('over-29-days'), false, 'its expiry passed while the broker was down');
      for (const id of ['over-31-days', 'long']) {
        const session = broker.sessions.get(id);
        assert.ok(session, `${id} is back`);
        const end = session.endsAt - performance.now() + Date.now();
        const expected = disconnectedAt + sessions[id as keyof typeof sessions].expiryInterval * 1000;
        assert.ok(Math.abs(end - expected) < 1000, `${id} ends ${end - expected} ms from its stored deadline`);
      }
      assert.equal(broker.sessions.get('never')!.endsAt, Infinity);
      // An overflowed timer would be one Node warns of (withoutTimerOverflow).
      for (const id of ['over-31-days', 'long', 'never']) {
        assert.ok(broker.sessions.has(id), `${id} is kept`);
        const c = await connectClient(b.url, { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
        const pub = await b.client();
        await pub.publishAsync(`old/${id}`, 'to the restored subscription', { qos: 1 });
        assert.equal((await collect(c, 1))[0]!.topic, `old/${id}`);
        await c.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
      }
      await b.close();
    }));

  it('ends a restored session when the expiry counted from its disconnection runs out, not a whole interval after the restart [MQTT-3.1.2-23]', async () => {
    const first = await startOnDir();
    const sub = await connectClient(first.url, { protocolVersion: 5, clientId: 'short-restart', clean: false, properties: { sessionExpiryInterval: 2 } });
    await sub.subscribeAsync('short/t', { qos: 1 });
    sub.stream.destroy();
    await disconnected(first, 'short-restart');
    const gone = Date.now();
    await first.close();
    // The broker stays down for a second: nothing runs that a test could wait on.
    await pace(1000 - (Date.now() - gone));

    const restarted = Date.now();
    const second = await startOnDir();
    assert.ok(second.server.broker.sessions.has('short-restart'), 'a second of its two was left');
    await until(() => !second.server.broker.sessions.has('short-restart'), 'the restored session to expire', 4000);
    const ended = Date.now();
    assert.equal(second.server.broker.sessions.has('short-restart'), false);
    assert.ok(ended - gone >= 1900, `ended ${ended - gone} ms after the disconnection`);
    assert.ok(ended - restarted < 2000, `ended ${ended - restarted} ms after the restart, before a whole interval`);
    await second.close();
  });

  it('publishes the wills that came due while the broker was down after the restart, to every restored session, once [MQTT-3.1.3-9]', async () => {
    const first = await startOnDir();
    // Named to be restored after the will owners: a will published during the restore would miss them.
    const watchOpts = { protocolVersion: 5 as const, clientId: 'will-z-watch', clean: false, properties: { sessionExpiryInterval: 600 } };
    const watcher = await connectClient(first.url, watchOpts);
    await watcher.subscribeAsync('will/restart/#', { qos: 1 });
    await watcher.endAsync();
    const dying = (clientId: string, sessionExpiryInterval: number, willDelayInterval: number) =>
      connectClient(first.url, {
        protocolVersion: 5,
        clientId,
        clean: false,
        properties: { sessionExpiryInterval },
        will: { topic: `will/restart/${clientId}`, payload: Buffer.from(clientId), qos: 1, retain: false, properties: { willDelayInterval } },
      });
    // One whose Will Delay runs out first, one whose session ends first (its will goes with it).
    const delayed = await dying('will-a-delayed', 600, 2);
    const ending = await dying('will-b-ending', 2, 0xffffffff);
    delayed.stream.destroy();
    ending.stream.destroy();
    await disconnected(first, 'will-a-delayed');
    await disconnected(first, 'will-b-ending');
    const gone = Date.now();
    for (const id of ['will-a-delayed', 'will-b-ending']) assert.notEqual(first.server.broker.sessions.get(id)!.willAt, Infinity, `${id}: will pending at shutdown`);
    await first.close();
    // The broker stays down past both deadlines: nothing runs that a test could wait on.
    await pace(2100 - (Date.now() - gone));

    const second = await startOnDir();
    const back = await connectClient(second.url, watchOpts);
    const wills = await collect(back, 2);
    assert.deepEqual(wills.map((m) => m.payload.toString()).sort(), ['will-a-delayed', 'will-b-ending']);
    assert.ok(second.server.broker.sessions.has('will-a-delayed'), 'the session whose will went lives on');
    assert.equal(second.server.broker.sessions.has('will-b-ending'), false);
    await back.endAsync();
    await second.close();

    const third = await startOnDir();
    const again = await connectClient(third.url, watchOpts);
    await expectSilence(again);
    await again.endAsync();
    await third.close();
  });
});
