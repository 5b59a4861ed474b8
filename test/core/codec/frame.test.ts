import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { Framer } from '../../../host/core/codec/frame.js';
import { ProtocolError } from '../../../host/core/codec/errors.js';

function frames(framer: Framer, chunks: Uint8Array[]): [number, number[]][] {
  const out: [number, number[]][] = [];
  for (const c of chunks) framer.push(c, 0, c.length, (h, buf, s, e) => (out.push([h, [...buf.subarray(s, e)]]), true));
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
    const sink = (): boolean => true;
    framer.push(packet, 0, 1024, sink);
    assert.ok(framer.allocated <= 2048, `${framer.allocated} bytes allocated`);
    let seen = 0;
    for (let at = 1024; at < packet.length; at += 64 * 1024) {
      framer.push(packet, at, Math.min(packet.length, at + 64 * 1024), (_h, buf, start, end) => {
        seen = end - start;
        assert.ok(buf.subarray(start, end).every((b, i) => i < 3 || b === 5));
        return true;
      });
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
    new Framer(1 << 20).push(copy, 2, 6, (h) => (seen.push(h), true), () => (copy = bytes.slice()));
    assert.deepEqual(seen, [0xc0, 0xe0]);
  });

  it('stops when the sink says so and passes nothing after', () => {
    const seen: number[] = [];
    const bytes = Uint8Array.of(0xc0, 0, 0xc0, 0, 0xc0, 0);
    new Framer(1 << 20).push(bytes, 0, bytes.length, (h) => (seen.push(h), seen.length < 2));
    assert.equal(seen.length, 2);
  });
});
