import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { collect, connectClient, delay, startBroker, type TestBroker } from '../../helpers/broker.js';
import { withoutTimerOverflow } from '../../helpers/warnings.js';

describe('CONNECT', () => {
  let b: TestBroker;
  beforeEach(async () => {
    b = await startBroker({ connectTimeoutMs: 300 });
  });
  afterEach(() => b.close());

  for (const protocolVersion of [3, 4, 5] as const) {
    it(`accepts MQTT ${protocolVersion === 3 ? '3.1' : protocolVersion === 4 ? '3.1.1' : '5.0'} clients from MQTT.js`, async () => {
      const client = await b.client({ protocolVersion, protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT', clientId: `v${protocolVersion}` });
      assert.equal(client.connected, true);
      await client.endAsync();
    });
  }

  it('refuses a zero-length client id with CleanSession=0 in 3.1.1 with return code 0x02 and closes [MQTT-3.1.3-8]', async () => {
    const raw = await b.raw();
    const ack = await raw.handshake({ clientId: '', clean: false });
    assert.equal(ack.returnCode, 2);
    await raw.expectClosed();
  });

  it('accepts a zero-length client id with CleanSession=1 in 3.1.1 [MQTT-3.1.3-6]', async () => {
    const raw = await b.raw();
    const ack = await raw.handshake({ clientId: '', clean: true });
    assert.equal(ack.returnCode, 0);
    raw.destroy();
  });

  it('assigns a client identifier to a 5.0 client that sent none and returns it in CONNACK [MQTT-3.2.2-16]', async () => {
    const raw = await b.raw();
    const ack = (await raw.handshake({ protocolVersion: 5, clientId: '', clean: false })) as IConnackPacket;
    assert.equal(ack.reasonCode, 0);
    const assigned = ack.properties?.assignedClientIdentifier;
    assert.ok(typeof assigned === 'string' && assigned.length > 0);
    raw.destroy();
  });

  it('answers an unsupported protocol level with CONNACK 0x01 and closes [MQTT-3.1.2-2]', async () => {
    const raw = (await b.raw()).version(4);
    // CONNECT "MQTT" level 6
    raw.send([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 6, 2, 0, 60, 0, 0]);
    const ack = (await raw.next('connack')) as IConnackPacket;
    assert.equal(ack.returnCode, 1);
    await raw.expectClosed();
  });

  it('closes a connection whose first packet is not CONNECT [MQTT-3.1.0-1]', async () => {
    const raw = await b.raw();
    raw.send([0xc0, 0x00]); // PINGREQ
    await raw.expectClosed();
    assert.equal(raw.packets.length, 0);
  });

  it('closes a connection that sends a second CONNECT [MQTT-3.1.0-2]', async () => {
    const raw = await b.raw();
    await raw.handshake();
    raw.sendPacket({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'again' });
    await raw.expectClosed();
  });

  it('sends DISCONNECT 0x82 before closing a 5.0 client that sends a second CONNECT [MQTT-3.1.0-2]', async () => {
    const raw = await b.raw();
    await raw.handshake({ protocolVersion: 5 });
    raw.sendPacket({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: 'again' }, 5);
    const d = (await raw.next('disconnect')) as IDisconnectPacket;
    assert.equal(d.reasonCode, 0x82);
    await raw.expectClosed();
  });

  it('closes a connection with the reserved connect flag set [MQTT-3.1.2-3]', async () => {
    const raw = await b.raw();
    raw.send([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x03, 0, 60, 0, 0]);
    await raw.expectClosed();
    assert.equal(raw.packets.length, 0);
  });

  it('closes a socket that sends nothing within the connect deadline', async () => {
    const raw = await b.raw();
    await raw.expectClosed(2000);
  });

  it('closes a client silent for 1.5 × its keep alive [MQTT-3.1.2-24]', async () => {
    const raw = await b.raw();
    await raw.handshake({ keepalive: 1 });
    const start = Date.now();
    await raw.expectClosed(3000);
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 1400 && elapsed < 2500, `closed after ${elapsed} ms`);
  });

  it('keeps a client that sends PINGREQ within its keep alive, answering PINGRESP [MQTT-3.12.4-1]', async () => {
    const raw = await b.raw();
    await raw.handshake({ keepalive: 1 });
    for (let i = 0; i < 4; i++) {
      await delay(500);
      raw.send([0xc0, 0x00]);
      await raw.next('pingresp');
    }
    assert.equal(raw.socket.destroyed, false);
    raw.destroy();
  });

  it('[MQTT-3.1.2-24] keeps a client whose PINGREQ came in time but was still unread when the deadline fired (a broker running behind)', async () => {
    const raw = await b.raw();
    await raw.handshake({ keepalive: 1 });
    await delay(1000);
    raw.send([0xc0, 0x00]);
    // The broker shares this thread: stall it past the 1.5 s deadline with the PINGREQ already in its
    // socket. Timers run before sockets are read, so the deadline fires first.
    const stalledUntil = performance.now() + 1000;
    while (performance.now() < stalledUntil);
    await raw.next('pingresp');
    await delay(100);
    assert.equal(raw.socket.destroyed, false);
    raw.destroy();
  });

  it('holds a CONNECT deadline beyond 24.8 days and the longest keep alive (65,535 s) without a timer overflow', () =>
    withoutTimerOverflow(async () => {
      const long = await startBroker({ connectTimeoutMs: 3_000_000_000 });
      try {
        const silent = await long.raw();
        const idle = await long.raw();
        await idle.handshake({ protocolVersion: 5, keepalive: 65_535 });
        // An overflowed timer fires after 1 ms.
        await delay(100);
        assert.equal(silent.socket.destroyed, false, 'no CONNECT yet, and far from its deadline');
        assert.equal(idle.socket.destroyed, false, 'idle, and far from 1.5 × 65,535 s');
        assert.equal(long.server.broker.timers.size, 2, 'one deadline per connection');
        idle.send([0xc0, 0x00]);
        await idle.next('pingresp');
      } finally {
        await long.close();
      }
    }));

  it('sends DISCONNECT 0x8D to a 5.0 client whose keep alive expired', async () => {
    const raw = await b.raw();
    await raw.handshake({ protocolVersion: 5, keepalive: 1 });
    const d = (await raw.next('disconnect', 3000)) as IDisconnectPacket;
    assert.equal(d.reasonCode, 0x8d);
    await raw.expectClosed();
  });

  it('closes the existing connection when a second one uses the same client id [MQTT-3.1.4-3]', async () => {
    const first = await connectClient(b.url, { clientId: 'takeover', protocolVersion: 5 });
    const disconnected = new Promise<number | undefined>((resolve) => first.once('disconnect', (p) => resolve(p.reasonCode)));
    const second = await connectClient(b.url, { clientId: 'takeover', protocolVersion: 5 });
    assert.equal(await disconnected, 0x8e);
    await second.subscribeAsync('takeover/t');
    second.publish('takeover/t', 'still here');
    const [m] = await collect(second, 1);
    assert.equal(m!.payload.toString(), 'still here');
    first.end(true);
    await second.endAsync();
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`refuses a CONNECT whose will goes to $SYS even without access rules (CONNACK ${protocolVersion === 5 ? '0x87' : '5'}), and accepts a will to another $ topic (v${protocolVersion})`, async () => {
      const watcher = await b.client({ protocolVersion });
      await watcher.subscribeAsync(['$SYS/#', '$app/#'], { qos: 1 });
      const refused = await b.raw();
      const ack = await refused.handshake({ protocolVersion, will: { topic: '$SYS/broker/version', payload: Buffer.from('fake'), qos: 1, retain: true } });
      assert.equal(ack.reasonCode ?? ack.returnCode, protocolVersion === 5 ? 0x87 : 5);
      await refused.expectClosed();
      const dying = await b.raw();
      const accepted = await dying.handshake({ protocolVersion, will: { topic: '$app/status', payload: Buffer.from('gone'), qos: 1, retain: false } });
      assert.equal(accepted.reasonCode ?? accepted.returnCode, 0);
      dying.destroy();
      assert.deepEqual((await collect(watcher, 1)).map((m) => m.topic), ['$app/status'], 'only the $app will, nothing on $SYS');
    });
  }
});
