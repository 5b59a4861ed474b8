import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, it } from 'node:test';
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { ackReason, collect, connectClient, type ServerTestBroker, startBroker } from '../helpers/broker.js';
import { until } from '../helpers/wait.js';

const MiB = 1024 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * When the arena reaches its cap, or the process its maxMemory, the broker refuses new work the way
 * the protocol lets it — and nothing else: connected clients are still served, nothing crashes, and
 * everything works again once the space is back.
 */
describe('arena and memory limits', () => {
  let b: ServerTestBroker;
  afterEach(() => b.close());

  it('a full arena: 5.0 QoS 1 publishers hear 0x97, a 3.1.1 QoS 1 publisher and a QoS 0 publisher are disconnected, control packets still flow; once the space is back publishing works again', async () => {
    b = await startBroker({ arenaCapBytes: 1 * MiB, maxQueuedMessages: 100_000, maxQueuedBytes: 1024 * MiB });
    const broker = b.server.broker;
    // An offline persistent session keeps every message: it fills the arena.
    const hoard = await connectClient(b.url, { clientId: 'hoard', clean: false });
    await hoard.subscribeAsync('fill/#', { qos: 1 });
    await hoard.endAsync();
    const pub = await b.client({ protocolVersion: 5 });
    const reasons: number[] = [];
    for (let i = 0; i < 400 && !reasons.includes(0x97); i++) reasons.push(await ackReason(pub.publishAsync('fill/t', Buffer.alloc(8 * 1024, i), { qos: 1 })));
    assert.equal(reasons.at(-1), 0x97, 'refused once the arena is full');
    assert.ok(reasons.slice(0, -1).every((r) => r === 0));
    assert.ok(broker.metrics.arenaFullDropped > 0);
    assert.ok(broker.core.arenaStats().bytesReserved <= 1 * MiB);

    const old = await b.raw();
    await old.handshake({ protocolVersion: 4 });
    old.sendPacket({ cmd: 'publish', topic: 'fill/t', payload: Buffer.alloc(8 * 1024), qos: 1, messageId: 1, retain: false, dup: false });
    await old.expectClosed();
    assert.equal(old.packets.filter((p) => p.cmd === 'puback').length, 0, '3.1.1: not acknowledged, so its client sends it again later');
    const qos0 = (await b.raw()).version(5);
    await qos0.handshake({ protocolVersion: 5 });
    qos0.sendPacket({ cmd: 'publish', topic: 'fill/t', payload: Buffer.alloc(8 * 1024), qos: 0, retain: false, dup: false }, 5);
    assert.equal(((await qos0.next('disconnect')) as IDisconnectPacket).reasonCode, 0x97);
    // Control packets do not need the arena.
    const ping = await b.raw();
    await ping.handshake();
    ping.sendPacket({ cmd: 'pingreq' });
    await ping.next('pingresp');
    ping.destroy();

    // The space comes back: the hoarding session is discarded.
    const clean = await b.client({ clientId: 'hoard', clean: true });
    await clean.endAsync();
    await until(() => broker.core.arenaStats().bytesInUse < 256 * 1024, 'the discarded session to free the arena');
    const sub = await b.client({ protocolVersion: 5 });
    await sub.subscribeAsync('fill/#', { qos: 1 });
    assert.equal(await ackReason(pub.publishAsync('fill/t', Buffer.alloc(8 * 1024, 1), { qos: 1 })), 0);
    assert.equal((await collect(sub, 1))[0]!.payload.length, 8 * 1024);
    assert.equal(broker.metrics.internalErrors, 0);
    assert.equal(broker.core.arenaStats().errors, 0);
  });

  it('maxMemory: 96 MiB allocated past the limit makes the broker refuse CONNECT (0x97 / 3) and QoS 1 PUBLISH (0x97) while it serves its connected clients; freed, it accepts again', async () => {
    gc();
    const limit = process.memoryUsage.rss() + 48 * MiB;
    b = await startBroker({ maxMemory: limit });
    const broker = b.server.broker;
    const sub = await b.client({ protocolVersion: 5 });
    await sub.subscribeAsync('mem/#', { qos: 1 });
    const pub = await b.client({ protocolVersion: 5 });
    assert.equal(await ackReason(pub.publishAsync('mem/t', 'before', { qos: 1 })), 0);
    assert.equal(broker.overloaded, false);

    let ballast: Buffer | null = Buffer.alloc(96 * MiB, 1);
    await until(() => broker.overloaded, 'the broker to see the limit passed', 5000);
    assert.equal(broker.overloaded, true, `over ${limit} bytes: RSS ${process.memoryUsage.rss()}`);
    const v5 = (await b.raw()).version(5);
    const refused5 = (await v5.handshake({ protocolVersion: 5 })) as IConnackPacket;
    assert.equal(refused5.reasonCode, 0x97);
    const v4 = await b.raw();
    assert.equal(((await v4.handshake({ protocolVersion: 4 })) as IConnackPacket).returnCode, 3);
    assert.equal(await ackReason(pub.publishAsync('mem/t', 'during', { qos: 1 })), 0x97);
    assert.match(b.server.metricsText(), /^arbormq_memory_limited 1$/m);
    assert.equal(broker.metrics.memoryRefused, 3);
    // Connected clients are still answered.
    await sub.unsubscribeAsync('nothing');
    assert.deepEqual((await collect(sub, 1)).map((m) => m.payload.toString()), ['before']);

    ballast.fill(2);
    ballast = null;
    gc();
    await until(() => !broker.overloaded, 'the broker to see memory back under the limit', 5000);
    assert.equal(broker.overloaded, false, `back under ${limit} bytes: RSS ${process.memoryUsage.rss()}`);
    const back = await b.client({ protocolVersion: 5 });
    assert.equal(await ackReason(back.publishAsync('mem/t', 'after', { qos: 1 })), 0);
    assert.deepEqual((await collect(sub, 1)).map((m) => m.payload.toString()), ['after']);
    assert.equal(broker.metrics.internalErrors, 0);
  });
});
