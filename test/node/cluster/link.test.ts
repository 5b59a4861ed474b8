import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { FrameType, FrameWriter, type FrameReader } from '../../../host/node/cluster/frame.js';
import type { LinkIdentity } from '../../../host/node/cluster/handshake.js';
import type { Link } from '../../../host/node/cluster/link.js';
import { dialLink, listenForLinks, type LinkListener, type LinkTls } from '../../../host/node/cluster/link-listener.js';
import { until } from '../../helpers/wait.js';
import { createPki, type TestPki } from '../../helpers/certificates.js';

const identity = (node: string, secret: string | null): LinkIdentity => ({
  cluster: 'test',
  node,
  incarnation: `${node}-1`,
  secret: secret === null ? null : Buffer.from(secret),
});

/** A listener for `self` that keeps the links it accepts and the log lines it writes. */
async function acceptor(self: LinkIdentity, tls: LinkTls | null = null) {
  const links: Link[] = [];
  const logs: string[] = [];
  const listener = await listenForLinks(0, '127.0.0.1', tls, self, (link) => links.push(link), (_level, msg, fields) => logs.push(`${msg} ${JSON.stringify(fields)}`));
  const scheme = tls ? 'wss' : 'ws';
  return { listener, links, logs, url: `${scheme}://127.0.0.1:${listener.address().port}` };
}

describe('cluster links: authentication, frames, failure detection', () => {
  let pki: TestPki;
  const listeners: LinkListener[] = [];
  before(async () => {
    pki = await createPki();
  });
  after(async () => {
    await Promise.all(listeners.map((l) => l.close()));
    await pki.remove();
  });

  it('a link port already taken is refused with the listener and the error named, and the process goes on', async () => {
    const taken = await acceptor(identity('n2', null));
    listeners.push(taken.listener);
    const port = taken.listener.address().port;
    await assert.rejects(
      listenForLinks(port, '127.0.0.1', null, identity('n3', null), () => undefined, () => undefined),
      new RegExp(`^Error: cluster link listener cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
    );
  });

  it('an upgrade to another path than the link endpoint is refused with 400', async () => {
    const a = await acceptor(identity('n2', null));
    listeners.push(a.listener);
    const socket = new WebSocket(`${a.url}/mqtt`);
    const status = await new Promise<number>((resolve, reject) => {
      socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.once('open', () => reject(new Error('the upgrade was accepted')));
      socket.once('error', reject);
    });
    socket.terminate();
    assert.equal(status, 400);
  });

  it('nodes holding the same secret link up and exchange frames; the secret never crosses the wire', async () => {
    const secret = 'the shared secret of this test';
    const a = await acceptor(identity('n2', secret));
    listeners.push(a.listener);
    const link = await dialLink(a.url, null, identity('n1', secret), 'n2');
    await until(() => a.links.length === 1, 'the accepted link', 2000);
    const received: number[] = [];
    a.links[0]!.start({ frame: (r: FrameReader) => void received.push(r.type, r.uint()), closed: () => undefined });
    link.start({ frame: () => undefined, closed: () => undefined });
    link.send(new FrameWriter(FrameType.ForwardAck).uint(42).finish());
    await until(() => received.length === 2, 'the frame', 2000);
    assert.deepEqual(received, [FrameType.ForwardAck, 42]);
    assert.deepEqual([link.peer.node, a.links[0]!.peer.node, a.links[0]!.peer.incarnation], ['n2', 'n1', 'n1-1']);
    link.close('done');
  });

  it('a node without the secret is refused on both sides, and the refusal is logged', async () => {
    const a = await acceptor(identity('n2', 'the shared secret of this test'));
    listeners.push(a.listener);
    await assert.rejects(dialLink(a.url, null, identity('n1', 'a different secret entirely'), 'n2'), /did not prove the cluster secret/);
    await until(() => a.logs.some((l) => l.startsWith('cluster link refused') && l.includes('did not prove the cluster secret')), 'the log line', 2000);
    assert.equal(a.links.length, 0);
  });

  it('mutual TLS links: a certificate from the cluster CA naming the node is accepted; another CA or another name is not', async () => {
    const ca = await import('node:fs/promises').then((fs) => fs.readFile(pki.caFile));
    const tlsFor = async (name: string): Promise<LinkTls> => ({ ...(await pki.node(name)), ca });
    const a = await acceptor(identity('n2', null), await tlsFor('n2'));
    listeners.push(a.listener);
    const link = await dialLink(a.url, await tlsFor('n1'), identity('n1', null), 'n2');
    await until(() => a.links.length === 1, 'the accepted link', 2000);
    link.close('done');
    const stranger = { ...(await pki.stranger()), ca };
    await assert.rejects(dialLink(a.url, stranger, identity('n1', null), 'n2'));
    await assert.rejects(dialLink(a.url, await tlsFor('n3'), identity('n1', null), 'n2'));
    await until(() => a.logs.some((l) => l.includes('the certificate does not name the node')), 'the refusal of a certificate naming another node', 2000);
    assert.equal(a.links.length, 1);
  });

  it('a peer that stops answering pings is declared dead within the configured time', async () => {
    const timing = { pingIntervalMs: 50, deadAfterMs: 300 };
    // Only the dialer watches closely: the frozen acceptor would otherwise give up on it first.
    const a = await acceptor(identity('n2', 'the shared secret of this test'));
    listeners.push(a.listener);
    const link = await dialLink(a.url, null, identity('n1', 'the shared secret of this test'), 'n2', timing);
    await until(() => a.links.length === 1, 'the accepted link', 2000);
    a.links[0]!.start({ frame: () => undefined, closed: () => undefined });
    let reason = '';
    const started = performance.now();
    link.start({ frame: () => undefined, closed: (_l, why) => (reason = why) });
    // The acceptor freezes: it reads nothing more, so it answers no ping.
    (a.links[0]!.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    await until(() => reason !== '', 'the link to be declared dead', 3000);
    assert.match(reason, /no answer for 300 ms/);
    assert.ok(performance.now() - started < 2000);
  });
});
