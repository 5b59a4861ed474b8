// The playground's grouping of packets into exchanges (playground/src/flows.ts), on the edge cases
// the page flows rarely meet: resent PUBLISH (DUP), a refused QoS 2 message, reused identifiers,
// acknowledgements in both directions at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PacketEvent } from '../../host/browser/packet-tap.js';
import { FlowLog } from '../../playground/src/flows.js';

let clock = 0;
const ev = (direction: 'out' | 'in', type: PacketEvent['type'], extra: Partial<PacketEvent> = {}): PacketEvent => ({ direction, type, at: clock++, size: 4, ...extra });
const steps = (log: FlowLog): string[][] => log.all().map((f) => f.steps.map((s) => `${s.direction} ${s.type}`));

describe('FlowLog', () => {
  it('pairs each acknowledgement with its PUBLISH by direction and identifier, both ways at once', () => {
    const log = new FlowLog();
    log.add(ev('out', 'PUBLISH', { qos: 2, packetId: 1 }));
    log.add(ev('in', 'PUBLISH', { qos: 1, packetId: 1 }));
    log.add(ev('in', 'PUBREC', { packetId: 1 }));
    log.add(ev('out', 'PUBACK', { packetId: 1 }));
    log.add(ev('out', 'PUBREL', { packetId: 1 }));
    log.add(ev('in', 'PUBCOMP', { packetId: 1 }));
    assert.deepEqual(steps(log), [
      ['out PUBLISH', 'in PUBREC', 'out PUBREL', 'in PUBCOMP'],
      ['in PUBLISH', 'out PUBACK'],
    ]);
    assert.ok(log.all().every((f) => f.complete));
  });

  it('a DUP resend joins its exchange; a new PUBLISH with a freed identifier starts another', () => {
    const log = new FlowLog();
    log.add(ev('out', 'PUBLISH', { qos: 1, packetId: 7 }));
    log.add(ev('out', 'PUBLISH', { qos: 1, packetId: 7, dup: true }));
    log.add(ev('in', 'PUBACK', { packetId: 7 }));
    log.add(ev('out', 'PUBLISH', { qos: 1, packetId: 7 }));
    assert.deepEqual(steps(log), [['out PUBLISH', 'out PUBLISH', 'in PUBACK'], ['out PUBLISH']]);
    assert.deepEqual(
      log.all().map((f) => f.complete),
      [true, false],
    );
  });

  it('a PUBREC with a failure code ends the QoS 2 exchange', () => {
    const log = new FlowLog();
    log.add(ev('out', 'PUBLISH', { qos: 2, packetId: 3 }));
    const flow = log.add(ev('in', 'PUBREC', { packetId: 3, reasonCode: 0x97 }));
    assert.ok(flow.complete);
  });

  it('QoS 0, DISCONNECT and unmatched acknowledgements stand alone; CONNECT, SUBSCRIBE and PINGREQ pair', () => {
    const log = new FlowLog();
    log.add(ev('out', 'CONNECT', { protocolVersion: 5 }));
    log.add(ev('in', 'CONNACK', { reasonCode: 0 }));
    log.add(ev('out', 'SUBSCRIBE', { packetId: 1 }));
    log.add(ev('in', 'SUBACK', { packetId: 1, reasonCodes: [1] }));
    log.add(ev('out', 'PUBLISH', { qos: 0 }));
    log.add(ev('in', 'PUBACK', { packetId: 99 }));
    log.add(ev('out', 'PINGREQ'));
    log.add(ev('in', 'PINGRESP'));
    log.add(ev('out', 'DISCONNECT', { reasonCode: 0 }));
    assert.deepEqual(steps(log), [['out CONNECT', 'in CONNACK'], ['out SUBSCRIBE', 'in SUBACK'], ['out PUBLISH'], ['in PUBACK'], ['out PINGREQ', 'in PINGRESP'], ['out DISCONNECT']]);
  });

  it('keeps the newest flows up to its limit', () => {
    const log = new FlowLog(3);
    for (let i = 1; i <= 5; i++) log.add(ev('out', 'PUBLISH', { qos: 1, packetId: i }));
    assert.deepEqual(
      log.all().map((f) => f.first.packetId),
      [3, 4, 5],
    );
    // A dropped flow's acknowledgement no longer finds it: it stands alone.
    log.add(ev('in', 'PUBACK', { packetId: 1 }));
    assert.deepEqual(log.all().at(-1)!.steps.map((s) => s.type), ['PUBACK']);
  });
});
