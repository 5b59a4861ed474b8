import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IPublishPacket, ISubackPacket, IUnsubackPacket } from 'mqtt-packet';
import { ackReason, collect, connectClient, expectSilence, startBroker } from '../helpers/broker.js';
import { canMount, fill, NO_MOUNT, withTmpfs } from '../helpers/tmpfs.js';
import { until } from '../helpers/wait.js';
import { T } from '../helpers/wire.js';

describe('durable state in LevelDB', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-data-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('brings back queued and in-flight QoS 1/2 messages, subscriptions and retained messages after a restart', async () => {
    const first = await startBroker({ dataDir: dir });
    const sub = await connectClient(first.url, { clientId: 'durable-sub', clean: false });
    await sub.subscribeAsync('d/#', { qos: 2 });
    await sub.endAsync();
    const pub = await first.client();
    await pub.publishAsync('d/1', 'one', { qos: 1 });
    await pub.publishAsync('d/2', 'two', { qos: 2 });
    await pub.publishAsync('d/r', 'kept', { qos: 1, retain: true });
    await first.close();

    const second = await startBroker({ dataDir: dir });
    const back = await connectClient(second.url, { clientId: 'durable-sub', clean: false });
    const got = await collect(back, 3);
    // MQTT.js emits a QoS 2 message only after PUBREL, so arrival order is the client's; compare as a set.
    assert.deepEqual(got.map((m) => m.payload.toString()).sort(), ['kept', 'one', 'two']);
    await back.endAsync();
    const fresh = await second.client();
    const retained = collect(fresh, 1);
    await fresh.subscribeAsync('d/r');
    assert.equal((await retained)[0]!.packet.retain, true);
    await second.close();

    // Delivered and acknowledged: nothing comes back a third time.
    const third = await startBroker({ dataDir: dir });
    const again = await connectClient(third.url, { clientId: 'durable-sub', clean: false });
    await expectSilence(again);
    await third.close();
  });

  it('keeps a message body that two sessions hold when the session whose record carried it finishes first', async () => {
    const first = await startBroker({ dataDir: dir });
    const pub = await first.client();
    const a = await connectClient(first.url, { clientId: 'holder-a', clean: false });
    await a.subscribeAsync('share/body', { qos: 1 });
    await a.endAsync();
    // Queued for offline A alone: A's delivery record carries the body.
    await pub.publishAsync('share/body', 'held twice', { qos: 1, retain: true });
    // B takes the same message as a retained copy and never acknowledges it.
    const b = await first.raw();
    await b.handshake({ clientId: 'holder-b', clean: false });
    b.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'share/body', qos: 1 }] });
    assert.equal(((await b.next('publish')) as IPublishPacket).payload.toString(), 'held twice');
    b.destroy();
    // A finishes first: the body must move to a record of its own for B.
    const a2 = await connectClient(first.url, { clientId: 'holder-a', clean: false });
    assert.equal((await collect(a2, 1))[0]!.payload.toString(), 'held twice');
    await a2.endAsync();
    await first.offline('holder-a');
    await first.close();

    const second = await startBroker({ dataDir: dir });
    const b2 = await second.raw();
    await b2.handshake({ clientId: 'holder-b', clean: false });
    const again = (await b2.next('publish')) as IPublishPacket;
    assert.equal(again.payload.toString(), 'held twice');
    assert.equal(again.dup, true);
    b2.destroy();
    await second.close();
  });

  it('gives messages stored after a restart ids of their own: a body two sessions share is not overwritten by a newer one', async () => {
    const first = await startBroker({ dataDir: dir });
    for (const clientId of ['ids-a', 'ids-b']) {
      const c = await connectClient(first.url, { clientId, clean: false });
      await c.subscribeAsync('ids/t', { qos: 1 });
      await c.endAsync();
    }
    // Both sessions offline: the body is one record that both deliveries name.
    await (await first.client()).publishAsync('ids/t', 'before the restart', { qos: 1 });
    await first.close();

    const second = await startBroker({ dataDir: dir });
    await (await second.client()).publishAsync('ids/t', 'after the restart', { qos: 1 });
    await second.close();

    const third = await startBroker({ dataDir: dir });
    for (const clientId of ['ids-a', 'ids-b']) {
      const c = await connectClient(third.url, { clientId, clean: false });
      assert.deepEqual((await collect(c, 2)).map((m) => m.payload.toString()), ['before the restart', 'after the restart'], clientId);
      await c.endAsync();
    }
    await third.close();
  });

  it('resends an unacknowledged in-flight message with DUP after a restart, same packet identifier', async () => {
    const first = await startBroker({ dataDir: dir });
    const raw = await first.raw();
    await raw.handshake({ clientId: 'inflight', clean: false });
    raw.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'i/t', qos: 1 }] });
    await raw.next('suback');
    const pub = await first.client();
    await pub.publishAsync('i/t', 'x', { qos: 1 });
    const p = (await raw.next('publish')) as IPublishPacket;
    raw.destroy();
    await first.close();
    const second = await startBroker({ dataDir: dir });
    const raw2 = await second.raw();
    await raw2.handshake({ clientId: 'inflight', clean: false });
    const again = (await raw2.next('publish')) as IPublishPacket;
    assert.equal(again.dup, true);
    assert.equal(again.messageId, p.messageId);
    raw2.sendPacket({ cmd: 'puback', messageId: again.messageId! });
    raw2.destroy();
    await second.close();
  });

  it('keeps QoS 2 exactly once across a restart: a PUBLISH resent after restart is not routed twice', async () => {
    const first = await startBroker({ dataDir: dir });
    const watcher = await connectClient(first.url, { clientId: 'q2-watch', clean: false });
    await watcher.subscribeAsync('q2/t', { qos: 2 });
    const raw = await first.raw();
    await raw.handshake({ clientId: 'q2-pub', clean: false });
    raw.sendPacket({ cmd: 'publish', topic: 'q2/t', payload: Buffer.from('once'), qos: 2, messageId: 77, dup: false, retain: false });
    await raw.next('pubrec');
    await collect(watcher, 1);
    raw.destroy();
    await watcher.endAsync();
    await first.close();
    const second = await startBroker({ dataDir: dir });
    const w2 = await connectClient(second.url, { clientId: 'q2-watch', clean: false });
    const raw2 = await second.raw();
    await raw2.handshake({ clientId: 'q2-pub', clean: false });
    raw2.sendPacket({ cmd: 'publish', topic: 'q2/t', payload: Buffer.from('once'), qos: 2, messageId: 77, dup: true, retain: false });
    await raw2.next('pubrec');
    raw2.sendPacket({ cmd: 'pubrel', messageId: 77 });
    await raw2.next('pubcomp');
    await expectSilence(w2);
    raw2.destroy();
    await w2.endAsync();
    await second.close();
  });

  it('answers SUBSCRIBE and UNSUBSCRIBE of a persistent session only once the change is durable, so a crash never leaves a present session without a subscription its client was told it has', { skip: canMount() ? false : NO_MOUNT }, () =>
    withTmpfs(dir, '4m', async (mnt) => {
      const b = await startBroker({ dataDir: join(mnt, 'db') });
      const persistence = b.server.broker.persistence;
      const pub = await b.client();
      fill(mnt);
      // A large write makes the store fail; a small one may still fit the log file's last page.
      const stuck = pub.publishAsync('sub/big', Buffer.alloc(256 * 1024), { qos: 1, retain: true });
      await until(() => persistence.failing, 'the write to fail', 5000);
      const durable = await b.raw();
      assert.equal((await durable.handshake({ clientId: 'sub-durable', clean: false })).returnCode, 0);
      durable.sendPacket({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'sub/#', qos: 1 }] });
      // No SUBACK while the subscription is not durable.
      await durable.none(T.SUBACK);
      const clean = await b.raw();
      await clean.handshake({ clientId: 'sub-clean' });
      clean.sendPacket({ cmd: 'subscribe', messageId: 8, subscriptions: [{ topic: 'sub/#', qos: 1 }] });
      assert.equal((await clean.next<ISubackPacket>('suback')).messageId, 8, 'a clean session has nothing to wait for');
      await rm(join(mnt, 'filler'));
      assert.equal((await durable.next<ISubackPacket>('suback', 10_000)).messageId, 7, 'SUBACK once it is durable');
      await stuck;
      const retained = await durable.next<IPublishPacket>('publish');
      assert.deepEqual([retained.topic, retained.retain], ['sub/big', true], 'the retained message follows its SUBACK');
      fill(mnt);
      const stuckAgain = pub.publishAsync('sub/big2', Buffer.alloc(256 * 1024), { qos: 1 });
      await until(() => persistence.failing, 'the write to fail', 5000);
      durable.sendPacket({ cmd: 'unsubscribe', messageId: 9, unsubscriptions: ['sub/#'] });
      // No UNSUBACK while the removal is not durable.
      await durable.none(T.UNSUBACK);
      await rm(join(mnt, 'filler'));
      assert.equal((await durable.next<IUnsubackPacket>('unsuback', 10_000)).messageId, 9);
      await stuckAgain;
      await b.close();
    }));

  it('acknowledges a message routed before the disk filled once its write succeeds, refuses QoS 1 with 0x80 and delivers or retains it nowhere while the disk is full, keeps QoS 0 flowing, and recovers when space returns', { skip: canMount() ? false : NO_MOUNT }, () =>
    withTmpfs(dir, '4m', async (mnt) => {
      const b = await startBroker({ dataDir: join(mnt, 'db') });
      const persistence = b.server.broker.persistence;
      const sub = await connectClient(b.url, { clientId: 'full-sub', clean: false });
      await sub.subscribeAsync('full/#', { qos: 1 });
      await sub.endAsync();
      const live = await b.client();
      await live.subscribeAsync('full/#');
      const pub = await b.client({ protocolVersion: 5 });
      await pub.publishAsync('full/r', 'old', { qos: 1, retain: true });
      await collect(live, 1);
      fill(mnt);
      // Large enough to need new pages: a small record may still fit the log file's last page.
      const routed = collect(live, 1);
      let firstAnswered = false;
      const firstAck = ackReason(pub.publishAsync('full/r', Buffer.alloc(256 * 1024, 2), { qos: 1, retain: true })).finally(() => (firstAnswered = true));
      assert.deepEqual((await routed).map((m) => `${m.topic} ${m.payload.length}`), ['full/r 262144'], 'routed at once: subscribers may have it before the write fails');
      await until(() => persistence.failing, 'the write to fail', 5000);
      assert.equal(await ackReason(pub.publishAsync('full/q1', Buffer.alloc(1024, 1), { qos: 1 })), 0x80);
      const zero = collect(live, 1);
      await pub.publishAsync('full/q0', 'flows', { qos: 0 });
      assert.deepEqual((await zero).map((m) => m.topic), ['full/q0'], 'the online subscriber never saw the refused message');
      assert.equal(firstAnswered, false, 'not acknowledged while its write fails');
      await rm(join(mnt, 'filler'));
      assert.equal(await firstAck, 0, 'a routed message is never refused: its acknowledgement waited for the retry');
      assert.equal(await ackReason(pub.publishAsync('full/q1b', 'stored', { qos: 1 })), 0, 'acknowledged again once the disk has room');
      await b.close();
      const after = await startBroker({ dataDir: join(mnt, 'db') });
      const back = await connectClient(after.url, { clientId: 'full-sub', clean: false });
      const got = await collect(back, 3);
      assert.deepEqual(got.map((m) => `${m.topic} ${m.payload.length}`), ['full/r 3', 'full/r 262144', 'full/q1b 6'], 'the refused message was not queued for the offline session');
      await expectSilence(back);
      const fresh = await connectClient(after.url);
      await fresh.subscribeAsync('full/r');
      assert.deepEqual((await collect(fresh, 1)).map((m) => m.payload.length), [262144], 'the acknowledged retained message replaced the old one');
      await fresh.endAsync();
      await back.endAsync();
      await after.close();
    }));
});

