import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNodeCore } from '../../host/node/load-core.js';
import { CoreError } from '../../host/core/wasm/core.js';

const core = await loadNodeCore();
const te = new TextEncoder();
const bytes = (...b: number[]) => new Uint8Array(b);

test('utf8Check accepts ASCII, 2-, 3- and 4-byte sequences including U+10FFFF', () => {
  assert.equal(core.utf8Check(te.encode('sensors/temperature/℃/😀/ä')), 0);
  assert.equal(core.utf8Check(bytes(0xf4, 0x8f, 0xbf, 0xbf)), 0); // U+10FFFF
  assert.equal(core.utf8Check(bytes(0xf0, 0x90, 0x80, 0x80)), 0); // U+10000
  assert.equal(core.utf8Check(bytes(0xef, 0xbf, 0xbf)), 0); // U+FFFF
  assert.equal(core.utf8Check(bytes(0xee, 0x80, 0x80)), 0); // U+E000, just after the surrogates
  assert.equal(core.utf8Check(bytes()), 0);
  assert.equal(core.utf8Check(te.encode('x'.repeat(1000) + 'é' + 'y'.repeat(13))), 0);
});

test('utf8Check rejects overlong encodings', () => {
  assert.equal(core.utf8Check(bytes(0xc0, 0xaf)), CoreError.BadUtf8); // '/' in 2 bytes
  assert.equal(core.utf8Check(bytes(0xc1, 0xbf)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0xe0, 0x80, 0xaf)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0xe0, 0x9f, 0xbf)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0xf0, 0x80, 0x80, 0xaf)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0xf0, 0x8f, 0xbf, 0xbf)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0xc0, 0x80)), CoreError.BadUtf8); // "modified UTF-8" NUL
});

test('utf8Check rejects UTF-16 surrogates U+D800..U+DFFF [MQTT-1.5.3-1]', () => {
  assert.equal(core.utf8Check(bytes(0xed, 0xa0, 0x80)), CoreError.BadUtf8); // U+D800
  assert.equal(core.utf8Check(bytes(0xed, 0xbf, 0xbf)), CoreError.BadUtf8); // U+DFFF
  assert.equal(core.utf8Check(bytes(0xed, 0x9f, 0xbf)), 0); // U+D7FF is fine
});

test('utf8Check rejects code points above U+10FFFF and bytes F5..FF', () => {
  assert.equal(core.utf8Check(bytes(0xf4, 0x90, 0x80, 0x80)), CoreError.BadUtf8); // U+110000
  assert.equal(core.utf8Check(bytes(0xf5, 0x80, 0x80, 0x80)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0xff)), CoreError.BadUtf8);
});

test('utf8Check rejects truncated sequences and stray continuation bytes', () => {
  assert.equal(core.utf8Check(bytes(0x61, 0xc3)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0xe2, 0x82)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0xf0, 0x9f, 0x98)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0xe2, 0x41, 0x82)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(bytes(0x80)), CoreError.BadUtf8);
  assert.equal(core.utf8Check(te.encode('abcdefgh12345678').map((b, i) => (i === 11 ? 0xbf : b))), CoreError.BadUtf8);
});

test('utf8Check rejects U+0000 anywhere [MQTT-1.5.3-2]', () => {
  assert.equal(core.utf8Check(bytes(0)), CoreError.NullChar);
  assert.equal(core.utf8Check(te.encode('abcdefghijklmnop\u0000q')), CoreError.NullChar);
  assert.equal(core.utf8Check(te.encode('abc\u0000defghijklmnop')), CoreError.NullChar);
});

test('topicCheck accepts valid names and filters, including empty levels', () => {
  for (const t of ['a', '/', '//', 'a//b', '/finance', 'sport/', '$SYS/broker/load', 'ä/😀', ' ']) {
    assert.equal(core.topicCheckBytes(te.encode(t), false), CoreError.Ok, t);
    assert.equal(core.topicCheckBytes(te.encode(t), true), CoreError.Ok, t);
  }
  for (const f of ['#', '+', '+/+', '/+', '+/', 'sport/#', 'sport/+/player1', '+/tennis/#', 'a//+//#', '$SYS/#']) {
    assert.equal(core.topicCheckBytes(te.encode(f), true), CoreError.Ok, f);
  }
});

test('topicCheck rejects empty names and filters', () => {
  assert.equal(core.topicCheckBytes(bytes(), false), CoreError.Empty);
  assert.equal(core.topicCheckBytes(bytes(), true), CoreError.Empty);
});

test('topicCheck rejects wildcards in topic names [MQTT-3.3.2-2]', () => {
  for (const t of ['#', '+', 'a/+', 'a/#', 'sport/tennis#', 'a+b', 'abcdefghijk/+']) {
    assert.equal(core.topicCheckBytes(te.encode(t), false), CoreError.WildcardInTopic, t);
  }
});

test('topicCheck rejects # that is not the last level [MQTT-4.7.1-1]', () => {
  for (const f of ['#/a', 'sport/#/ranking', 'a/#/']) {
    assert.equal(core.topicCheckBytes(te.encode(f), true), CoreError.HashNotLast, f);
  }
});

test('topicCheck rejects # sharing its level [MQTT-4.7.1-1]', () => {
  for (const f of ['sport/tennis#', 'a#', '#a', 'a/b#/c', 'x/##']) {
    assert.equal(core.topicCheckBytes(te.encode(f), true), CoreError.HashNotAlone, f);
  }
});

test('topicCheck rejects + sharing its level [MQTT-4.7.1-2]', () => {
  for (const f of ['sport+', '+a', 'a/b+/c', 'a/++', 'abcdefghijklmno+/x']) {
    assert.equal(core.topicCheckBytes(te.encode(f), true), CoreError.PlusNotAlone, f);
  }
});

test('topicCheck reports bad UTF-8 and NUL before wildcard problems', () => {
  assert.equal(core.topicCheckBytes(bytes(0x61, 0xed, 0xa0, 0x80), false), CoreError.BadUtf8);
  assert.equal(core.topicCheckBytes(bytes(0x23, 0x00), true), CoreError.NullChar);
  assert.equal(core.topicCheckBytes(new Uint8Array([...te.encode('a/+x/'), 0xff]), true), CoreError.BadUtf8);
  assert.equal(core.topicCheckBytes(new Uint8Array([...te.encode('sensors/#/'), 0xe2, 0x82]), true), CoreError.BadUtf8);
  assert.equal(core.topicCheckBytes(te.encode('ä/+x/ü'), true), CoreError.PlusNotAlone);
  assert.equal(core.topicCheckBytes(te.encode('längere/ebene/#'), false), CoreError.WildcardInTopic);
});

test('topicCheck rejects names longer than 65535 bytes and ranges outside memory', () => {
  assert.equal(core.topicCheckBytes(new Uint8Array(65536).fill(0x61), false), CoreError.TooLong);
  assert.equal(core.topicCheckBytes(new Uint8Array(65535).fill(0x61), false), CoreError.Ok);
  assert.equal(core.topicCheck(core.memory.buffer.byteLength - 2, 10, false), CoreError.OutOfBounds);
});

test('topicCheck reads bytes already in wasm memory (arena block)', () => {
  const t = te.encode('a/b/c');
  const h = core.alloc(t.length);
  core.view(h).set(t);
  assert.equal(core.topicCheck(core.ptr(h), t.length, false), CoreError.Ok);
  assert.equal(core.topicCheck(core.ptr(h), t.length, true), CoreError.Ok);
  core.view(h)[2] = 0x2b;
  assert.equal(core.topicCheck(core.ptr(h), t.length, false), CoreError.WildcardInTopic);
  assert.equal(core.topicCheck(core.ptr(h), t.length, true), CoreError.Ok);
  assert.equal(core.unref(h), 0);
});
