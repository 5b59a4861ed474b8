import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IConnackPacket, IPublishPacket } from 'mqtt-packet';
import { MemoryStore } from '../../host/core/model/store.js';
import { ArborServer } from '../../host/node/server.js';
import { assertArenaEmpty, connectClient } from '../helpers/broker.js';
import { kill, startCli, type RunningCli } from '../helpers/cli.js';
import { local } from '../helpers/server.js';
import { Peer } from '../helpers/peer.js';

describe('graceful shutdown', () => {
  it('tells 5.0 clients 0x8B, flushes persistent sessions and queued messages to the store, and reports a clean close', async () => {
    const store = new MemoryStore();
    const server = await ArborServer.start({ listeners: [local], store });
    const url = `mqtt://127.0.0.1:${server.port}`;
    const durable = await connectClient(url, { clientId: 'durable', clean: false, protocolVersion: 4 });
    await durable.subscribeAsync('orders/#', { qos: 1 });
    const away = await connectClient(url, { clientId: 'away', clean: false });
    await away.subscribeAsync('orders/#', { qos: 1 });
    await away.endAsync();
    const v5 = await connectClient(url, { protocolVersion: 5, clientId: 'v5' });
    const told = new Promise<number | undefined>((resolve) => v5.once('disconnect', (p) => resolve(p.reasonCode)));
    await v5.publishAsync('orders/1', 'for the offline session', { qos: 1 });

    const result = await server.close();
    assert.deepEqual(result, { clean: true });
    assert.equal(await told, 0x8b);
    const state = await store.load();
    const sessions = new Map(state.sessions.map((s) => [s.clientId, s]));
    assert.deepEqual(
      sessions.get('durable')?.subscriptions.map((s) => s.filter),
      ['orders/#'],
    );
    assert.ok(sessions.get('durable')!.disconnectedAt > 0, 'the connected session is stored as disconnected at shutdown');
    assert.ok(
      state.deliveries.some((d) => d.clientId === 'away'),
      'the message queued for the offline session is in the store',
    );
    await assertArenaEmpty(server.broker.core);
    durable.end(true);
    v5.end(true);
  });

  it('drops clients that do not close by the deadline, and says the close was not clean', async () => {
    const server = await ArborServer.start({ listeners: [local], shutdownTimeoutMs: 300 });
    const stubborn = await new Peer().tcp(server.port);
    await stubborn.handshake({ protocolVersion: 4 });
    // Keep our half of the socket open after the broker's FIN, like a client that never reacts.
    stubborn.ignoreEnd();
    const started = Date.now();
    const result = await server.close();
    const took = Date.now() - started;
    assert.deepEqual(result, { clean: false });
    assert.ok(took >= 250 && took < 1500, `close took ${took} ms`);
    assert.equal(server.connectionCount, 0, 'the server dropped its side of the connection');
    stubborn.destroy();
    await assertArenaEmpty(server.broker.core);
  });
});

describe('arbormq on SIGTERM with a data directory', () => {
  let dir: string;
  let cli: RunningCli | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-sigterm-'));
  });
  after(async () => {
    await kill(cli);
    await rm(dir, { recursive: true, force: true });
  });

  it('exits 0 promptly and keeps a persistent session and its queued message for the next start', async () => {
    const args = ['--port', '0', '--host', '127.0.0.1', '--data-dir', dir];
    cli = await startCli(args);
    const url = `mqtt://127.0.0.1:${cli.ports.get('mqtt')}`;
    const durable = await connectClient(url, { clientId: 'kept', clean: false });
    await durable.subscribeAsync('jobs', { qos: 1 });
    await durable.endAsync();
    const pub = await connectClient(url);
    await pub.publishAsync('jobs', 'survives the restart', { qos: 1 });
    const started = Date.now();
    assert.equal(await cli.stop('SIGTERM'), 0);
    assert.ok(Date.now() - started < 3000, 'shutdown is prompt');
    pub.end(true);

    cli = await startCli(args);
    const back = await new Peer().tcp(cli.ports.get('mqtt')!);
    const connack = (await back.handshake({ protocolVersion: 4, clientId: 'kept', clean: false })) as IConnackPacket;
    assert.equal(connack.sessionPresent, true);
    assert.equal(((await back.next('publish')) as IPublishPacket).payload.toString(), 'survives the restart');
    back.destroy();
    assert.equal(await cli.stop('SIGTERM'), 0);
  });
});

describe('arbormq without --data-dir', () => {
  let cwd: string;
  let cli: RunningCli | undefined;
  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'arbormq-cwd-'));
  });
  after(async () => {
    await kill(cli);
    await rm(cwd, { recursive: true, force: true });
  });

  it('keeps its state under ./data of the working directory, as `npm start` does', async () => {
    cli = await startCli(['--port', '0', '--host', '127.0.0.1'], { cwd });
    const url = `mqtt://127.0.0.1:${cli.ports.get('mqtt')}`;
    const pub = await connectClient(url);
    await pub.publishAsync('default/dir', 'kept', { qos: 1, retain: true });
    await pub.endAsync();
    assert.equal(await cli.stop('SIGTERM'), 0);
    assert.ok((await readdir(join(cwd, 'data'))).some((name) => name === 'CURRENT'), 'a LevelDB database in ./data');
    cli = await startCli(['--port', '0', '--host', '127.0.0.1'], { cwd });
    const back = await new Peer().tcp(cli.ports.get('mqtt')!);
    await back.handshake({ protocolVersion: 4 });
    back.sendPacket({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'default/dir', qos: 1 }] });
    assert.equal(((await back.next('publish')) as IPublishPacket).payload.toString(), 'kept');
    back.destroy();
  });
});
