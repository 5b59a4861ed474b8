import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Message } from '../../../host/core/model/message.js';
import type { Core } from '../../../host/core/wasm/core.js';
import { EntryReader, NO_GROUPS } from '../../../host/node/cluster/forward-codec.js';
import { FrameType, FrameWriter, type FrameReader } from '../../../host/node/cluster/frame.js';
import type { Link } from '../../../host/node/cluster/link.js';
import { dialLink, listenForLinks, type LinkListener } from '../../../host/node/cluster/link-listener.js';
import { Confirmation, PeerOutlet } from '../../../host/node/cluster/peer-outlet.js';
import { loadNodeCore } from '../../../host/node/load-core.js';
import { until } from '../../helpers/wait.js';

const LIMIT = 64 * 1024;
const self = (node: string) => ({ cluster: 'test', node, incarnation: `${node}-1`, secret: Buffer.from('the shared secret of this test') });
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('a peer outlet over a real link', () => {
  let core: Core;
  let listener: LinkListener;
  let sender: Link;
  let receiver: Link;
  /** Sequence numbers of the forwards the receiving side read, in order. */
  const read: number[] = [];
  before(async () => {
    core = await loadNodeCore({});
    const accepted: Link[] = [];
    // Liveness is not what this test is about: a stalled receiver must not be declared dead meanwhile.
    const patient = { pingIntervalMs: 1000, deadAfterMs: 60_000 };
    listener = await listenForLinks(0, '127.0.0.1', null, self('n2'), (link) => accepted.push(link), () => undefined, patient);
    sender = await dialLink(`ws://127.0.0.1:${listener.address().port}`, null, self('n1'), 'n2', patient);
    await until(() => accepted.length === 1, 'the link', 2000);
    receiver = accepted[0]!;
    // The receiving node: reads each batch and confirms everything in it at once.
    receiver.start({
      frame: (r: FrameReader) => {
        const entry = new EntryReader(r);
        let seq = 0;
        for (let n = r.u32(), base = r.uint(); n > 0; n--) {
          entry.next();
          seq = (seq === 0 ? base : seq) + entry.seqDelta;
          read.push(seq);
        }
        receiver.send(new FrameWriter(FrameType.ForwardAck).uint(seq).finish());
      },
      closed: () => undefined,
    });
  });
  after(async () => {
    sender.close('done');
    await listener.close();
  });

  it('over a congested link drops QoS 0 forwards (counted), holds QoS 1 ones and their confirmation, and sends them in order once it drains', async () => {
    const outlet = new PeerOutlet('peer', LIMIT, (o) => setImmediate(() => o.flush()), () => undefined);
    sender.start({ frame: (r) => r.type === FrameType.ForwardAck && outlet.acknowledged(r.uint()), closed: () => undefined });
    outlet.linkUp(sender);
    // The receiving process stops reading: the kernel's buffers fill, then the link's own.
    const socket = (receiver.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const qos0 = Message.create(core, 'jam/0', new Uint8Array(16 * 1024), 0, false)!;
    for (let i = 0; i < 20_000 && outlet.dropped === 0; i++) {
      outlet.forward(qos0, true, NO_GROUPS, null, null);
      if (i % 16 === 15) await turn();
    }
    qos0.unref();
    assert.ok(outlet.dropped > 0, 'QoS 0 forwards beyond the bound are dropped');
    assert.ok(outlet.backlog > LIMIT);
    const qos1 = Message.create(core, 'jam/1', new Uint8Array(100), 1, false)!;
    const confirmation = new Confirmation();
    outlet.forward(qos1, true, NO_GROUPS, null, confirmation);
    qos1.unref();
    let confirmed = false;
    void confirmation.promise.then(() => (confirmed = true));
    // Nothing can confirm it while the peer reads nothing: it waits, kept, behind the congestion.
    await turn();
    assert.equal(confirmed, false, 'the publisher waits while the link is congested');
    assert.equal(outlet.unconfirmed, 1);
    socket.resume();
    await until(() => confirmed, 'the confirmation after the link drained', 10_000);
    assert.deepEqual(read, [...read].sort((a, b) => a - b), 'in order');
    assert.equal(outlet.unconfirmed, 0);
    await until(() => core.arenaStats().liveHandles === 0, 'every reference released', 2000);
  });
});
