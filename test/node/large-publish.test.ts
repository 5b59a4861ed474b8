import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { IPublishPacket } from 'mqtt-packet';
import { type ServerTestBroker, startBroker } from '../helpers/broker.js';
import { connect, encode, prop, publish, subscribe, type Version } from '../helpers/packets.js';
import type { Peer } from '../helpers/peer.js';
import { until } from '../helpers/wait.js';

const PINGREQ = Uint8Array.of(0xc0, 0);

/**
 * A PUBLISH larger than a socket read arrives in many chunks. Once the client is authenticated the
 * broker assembles it in one arena block of its size, copying each chunk straight to its place;
 * these tests cut the packet at every place where framing could go wrong and check what arrives.
 */
describe('a PUBLISH spanning many TCP chunks', () => {
  let b: ServerTestBroker;
  afterEach(() => b.close());

  async function peer(version: Version, clientId: string): Promise<Peer> {
    const p = (await b.raw()).version(version);
    p.send(encode(connect({ version, clientId, clean: true, keepAlive: 0, props: [] })));
    await p.next('connack');
    return p;
  }

  /** Sends `bytes` cut at `cuts`, each part only once the broker has read everything before it: the broker reads each part as its own chunk(s). */
  async function sendInParts(p: Peer, bytes: Uint8Array, cuts: number[]): Promise<void> {
    const start = b.broker.metrics.bytesReceived;
    let from = 0;
    for (const to of [...cuts, bytes.length]) {
      p.send(bytes.subarray(from, to));
      await until(() => b.broker.metrics.bytesReceived === start + to, `the broker to read ${to} bytes`);
      from = to;
    }
  }

  for (const version of [4, 5] as const) {
    it(`delivers it intact whatever chunk boundaries cut its header, topic, packet identifier, properties and payload (MQTT ${version === 5 ? '5.0' : '3.1.1'}), and holds nothing afterwards`, async () => {
      b = await startBroker();
      const sub = await peer(version, 'big-sub');
      sub.send(encode(subscribe(version, 1, [{ filter: 'big/#', options: 0 }], [])));
      await sub.next('suback');
      const pub = await peer(version, 'big-pub');
      const baseline = b.broker.core.arenaStats().liveHandles;

      const payload = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 9)) & 0xff);
      const props = version === 5 ? [prop(0x03, 'application/x-test'), prop(0x26, ['k', 'v'])] : [];
      const small = encode(publish(version, { topic: 'big/small', qos: 1, retain: false, dup: false, packetId: 1, payload: Uint8Array.of(1, 2, 3), props }));
      const large = encode(publish(version, { topic: 'big/topic/name', qos: 1, retain: false, dup: false, packetId: 2, payload, props }));
      const header = 4; // fixed header byte + three bytes of Remaining Length
      const topicEnd = header + 2 + 'big/topic/name'.length;
      const payloadStart = large.length - payload.length;
      // Relative to the large packet: inside the Remaining Length, the topic length, the topic, the packet
      // identifier, the properties, the payload's first and last bytes; the small PUBLISH shares the first
      // chunk, a PINGREQ the last.
      const cuts = [1, 2, 3, header + 1, header + 5, topicEnd + 1, topicEnd + 2, topicEnd + 4, payloadStart, payloadStart + 1, 70_000, 200_001, large.length - 1];
      const bytes = Buffer.concat([small, large, PINGREQ]);
      await sendInParts(pub, bytes, [...new Set(cuts)].sort((x, y) => x - y).map((c) => small.length + c));

      const acks = [await pub.next('puback'), await pub.next('puback')];
      assert.deepEqual(
        acks.map((a) => a.messageId),
        [1, 2],
      );
      await pub.next('pingresp');
      const first = await sub.next<IPublishPacket>('publish');
      const second = await sub.next<IPublishPacket>('publish');
      assert.equal(first.topic, 'big/small');
      assert.equal(second.topic, 'big/topic/name');
      assert.ok(Buffer.from(payload).equals(second.payload as Buffer), 'the payload arrives byte for byte');
      if (version === 5) {
        assert.equal(second.properties?.contentType, 'application/x-test');
        assert.deepEqual({ ...second.properties?.userProperties }, { k: 'v' });
      }
      await until(() => b.broker.core.arenaStats().liveHandles === baseline, 'the arena to hold what it held before the PUBLISH');
    });
  }

  it('releases the block of a PUBLISH whose sender disconnects halfway through it', async () => {
    b = await startBroker();
    const pub = await peer(4, 'quitter');
    const baseline = b.broker.core.arenaStats().liveHandles;
    const large = encode(publish(4, { topic: 'big/quit', qos: 1, retain: false, dup: false, packetId: 1, payload: new Uint8Array(1 << 20), props: [] }));
    await sendInParts(pub, large.subarray(0, 200_000), [100_000]);
    assert.equal(b.broker.core.arenaStats().liveHandles, baseline + 1, 'one block holds the packet being received');
    pub.destroy();
    await until(() => b.broker.connections.size === 0, 'the broker to see the connection go');
    assert.equal(b.broker.core.arenaStats().liveHandles, baseline);
  });
});
