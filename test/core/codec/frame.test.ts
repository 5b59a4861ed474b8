import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { Framer, type PacketSink } from '../../../host/core/codec/frame.js';
import { ProtocolError } from '../../../host/core/codec/errors.js';
import { loadNodeCore } from '../../../host/node/load-core.js';

const sink = (onPacket: PacketSink['onPacket']): PacketSink => ({ onPacket });
const takeAll = sink(() => true);

function frames(framer: Framer, chunks: Uint8Array[]): [number, number[]][] {
  const out: [number, number[]][] = [];
  for (const c of chunks) framer.push(c, 0, c.length, sink((h, buf, s, e) => (out.push([h, [...buf.subarray(s, e)]]), true)));
  return out;
}

const publish = (topic: string, payload: Buffer): Buffer =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false });

describe('Framer', () => {
  it('splits several packets inside one chunk', () => {
    const a = publish('a', Buffer.from('1'));
    const b = publish('b/c', Buffer.alloc(300, 7));
    const got = frames(new Framer(1 << 20), [Buffer.concat([a, b])]);
    assert.equal(got.length, 2);
    assert.deepEqual(got[0], [0x30, [...a.subarray(2)]]);
    assert.deepEqual(got[1]![1], [...b.subarray(3)]);
  });

  it('assembles packets split at every possible byte boundary, including inside the remaining length', () => {
    const packet = publish('topic/x', Buffer.alloc(200, 1));
    const whole = Buffer.concat([packet, Buffer.from([0xc0, 0x00])]);
    for (let cut = 1; cut < whole.length; cut++) {
      const got = frames(new Framer(1 << 20), [whole.subarray(0, cut), whole.subarray(cut)]);
      assert.equal(got.length, 2, `cut at ${cut}`);
      assert.deepEqual(got[0]![1], [...packet.subarray(3)]);
      assert.deepEqual(got[1], [0xc0, []]);
    }
  });

  it('assembles a packet delivered one byte at a time', () => {
    const packet = publish('x', Buffer.alloc(20000, 3));
    const chunks = [...packet].map((b) => Uint8Array.of(b));
    const got = frames(new Framer(1 << 20), chunks);
    assert.equal(got.length, 1);
    assert.equal(got[0]![1].length, packet.length - 4);
  });

  it('memory reservation attack: a header claiming 16 MiB followed by 1 KiB allocates what arrived, not what was claimed', () => {
    const framer = new Framer(1 << 28);
    const packet = publish('t', Buffer.alloc(16 * 1024 * 1024, 5));
    framer.push(packet, 0, 1024, takeAll);
    assert.ok(framer.allocated <= 2048, `${framer.allocated} bytes allocated`);
    let seen = 0;
    for (let at = 1024; at < packet.length; at += 64 * 1024) {
      framer.push(
        packet,
        at,
        Math.min(packet.length, at + 64 * 1024),
        sink((_h, buf, start, end) => {
          seen = end - start;
          assert.ok(buf.subarray(start, end).every((b, i) => i < 3 || b === 5));
          return true;
        }),
      );
      assert.ok(framer.allocated <= 2 * Math.min(packet.length, at + 64 * 1024) || seen > 0);
    }
    assert.equal(seen, packet.length - 5);
    assert.equal(framer.allocated, 0);
  });

  it('refuses a packet larger than the maximum with Packet Too Large before reading its body', () => {
    const framer = new Framer(100);
    const head = publish('t', Buffer.alloc(200)).subarray(0, 3);
    assert.throws(() => frames(framer, [head]), (e: unknown) => e instanceof ProtocolError && e.reason === 0x95);
  });

  it('treats a five-byte remaining length as malformed [MQTT-1.5.5-1]', () => {
    assert.throws(
      () => frames(new Framer(1 << 30), [Uint8Array.of(0x30, 0xff, 0xff, 0xff, 0xff, 0x01)]),
      (e: unknown) => e instanceof ProtocolError && e.reason === 0x81,
    );
  });

  it('treats a non-minimal remaining length encoding as malformed [MQTT-1.5.5-1]', () => {
    assert.throws(
      () => frames(new Framer(1 << 20), [Uint8Array.of(0xc0, 0x80, 0x00)]),
      (e: unknown) => e instanceof ProtocolError && e.reason === 0x81,
    );
  });

  it('frames a range of a larger buffer and re-reads the buffer through refresh after each packet', () => {
    const bytes = Uint8Array.of(9, 9, 0xc0, 0, 0xe0, 0, 9);
    let copy = bytes.slice();
    const seen: number[] = [];
    new Framer(1 << 20).push(copy, 2, 6, sink((h) => (seen.push(h), true)), () => (copy = bytes.slice()));
    assert.deepEqual(seen, [0xc0, 0xe0]);
  });

  it('stops when the sink says so and passes nothing after', () => {
    const seen: number[] = [];
    const bytes = Uint8Array.of(0xc0, 0, 0xc0, 0, 0xc0, 0);
    new Framer(1 << 20).push(bytes, 0, bytes.length, sink((h) => (seen.push(h), seen.length < 2)));
    assert.equal(seen.length, 2);
  });

  describe('with an area (the wasm arena)', () => {
    it('assembles a packet spanning chunks in one region of its size, cut at every byte of its first 40 and its last 40', async () => {
      const core = await loadNodeCore();
      const packet = publish('area/topic', Buffer.from(Array.from({ length: 3000 }, (_, i) => i & 0xff)));
      const whole = Buffer.concat([packet, Buffer.from([0xc0, 0x00])]);
      const cuts = [...Array.from({ length: 40 }, (_, i) => i + 1), ...Array.from({ length: 40 }, (_, i) => packet.length - 40 + i)];
      for (const cut of cuts) {
        const framer = new Framer(1 << 20);
        framer.area = core;
        const got = frames(framer, [whole.subarray(0, cut), whole.subarray(cut, cut + 1000), whole.subarray(cut + 1000)]);
        assert.equal(got.length, 2, `cut at ${cut}`);
        assert.deepEqual(got[0], [0x30, [...packet.subarray(3)]], `cut at ${cut}`);
        assert.deepEqual(got[1], [0xc0, []]);
        assert.equal(core.arenaStats().liveHandles, 0, 'the region is released once the packet was passed on');
      }
    });

    it('allocates the region once, at the packet size, and owes exactly the bytes still missing', async () => {
      const core = await loadNodeCore();
      const framer = new Framer(1 << 24);
      framer.area = core;
      const packet = publish('t', Buffer.alloc(1 << 20, 9));
      const seen: number[] = [];
      const check = sink((_h, buf, start, end) => {
        seen.push(end - start);
        assert.ok(buf.subarray(start + 3, end).every((b) => b === 9));
        return true;
      });
      framer.push(packet, 0, 64 * 1024, check);
      assert.equal(core.arenaStats().liveHandles, 1);
      assert.equal(framer.allocated, packet.length);
      for (let at = 64 * 1024; at < packet.length; at += 64 * 1024) {
        assert.equal(framer.owed, packet.length - at);
        framer.push(packet, at, Math.min(packet.length, at + 64 * 1024), check);
        assert.equal(core.arenaStats().liveHandles, at + 64 * 1024 < packet.length ? 1 : 0);
      }
      assert.deepEqual(seen, [packet.length - 4]);
      assert.equal(framer.owed, 0);
    });

    it('re-reads wasm memory when allocating the region grows it, so the bytes already framed are not lost', async () => {
      const core = await loadNodeCore();
      const framer = new Framer(1 << 26);
      framer.area = core;
      const before = core.bytes().buffer.byteLength;
      // Larger than all free memory: the region's allocation must grow it, detaching the view being framed.
      const packet = publish('grow', Buffer.alloc(before + (1 << 20), 4));
      const first = 1000;
      const at = core.receiveBuffer(first);
      core.bytes().set(packet.subarray(0, first), at);
      let seen = 0;
      framer.push(core.bytes(), at, at + first, takeAll, core.refreshBytes);
      assert.ok(core.bytes().buffer.byteLength > before, 'memory grew');
      framer.push(
        packet,
        first,
        packet.length,
        sink((_h, buf, start, end) => {
          assert.deepEqual([...buf.subarray(start, start + 6)], [0, 4, 0x67, 0x72, 0x6f, 0x77]);
          assert.ok(buf.subarray(start + 6, end).every((b) => b === 4));
          seen = end - start;
          return true;
        }),
      );
      assert.equal(seen, packet.length - 5);
      assert.equal(core.arenaStats().liveHandles, 0);
    });

    it('discard() releases the region of a packet that never completed', async () => {
      const core = await loadNodeCore();
      const framer = new Framer(1 << 20);
      framer.area = core;
      const packet = publish('t', Buffer.alloc(10_000));
      framer.push(packet, 0, 100, takeAll);
      assert.equal(core.arenaStats().liveHandles, 1);
      framer.discard();
      assert.equal(core.arenaStats().liveHandles, 0);
      assert.equal(framer.owed, 0);
    });

    it('falls back to a growing buffer when the arena has no room for the packet', async () => {
      const core = await loadNodeCore({ arenaCapBytes: 64 * 1024 });
      const framer = new Framer(1 << 20);
      framer.area = core;
      const packet = publish('t', Buffer.alloc(200_000, 1));
      const got = frames(framer, [packet.subarray(0, 1000), packet.subarray(1000)]);
      assert.equal(got.length, 1);
      assert.equal(got[0]![1].length, packet.length - 4);
      assert.equal(core.arenaStats().liveHandles, 0);
    });
  });
});
