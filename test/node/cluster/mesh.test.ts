import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FrameType, FrameWriter, LINK_PROTOCOL_VERSION } from '../../../host/node/cluster/frame.js';
import type { LinkIdentity } from '../../../host/node/cluster/handshake.js';
import { listenForLinks, type LinkListener } from '../../../host/node/cluster/link-listener.js';
import { Mesh, type MeshHandler } from '../../../host/node/cluster/mesh.js';
import { until } from '../../helpers/wait.js';

const identity = (node: string): LinkIdentity => ({ cluster: 'test', node, incarnation: `${node}-1`, secret: null });

describe('the mesh of links', () => {
  const listeners: LinkListener[] = [];
  const meshes: Mesh<null>[] = [];
  after(async () => {
    for (const mesh of meshes) mesh.close();
    await Promise.all(listeners.map((l) => l.close()));
  });

  /** n1's mesh; `hooks` record what the test watches, every other event is ignored. */
  const meshOfN1 = (hooks: Partial<MeshHandler<null>>): Mesh<null> => {
    const mesh = new Mesh<null>(identity('n1'), null, { newPeerState: () => null, linkUp: () => undefined, linkDown: () => undefined, frame: () => undefined, peerLeft: () => undefined, ...hooks }, () => undefined);
    meshes.push(mesh);
    return mesh;
  };

  it('a link that reached a restarted peer at the address its old member key named stays up when the new key names that process', async () => {
    const listener = await listenForLinks(0, '127.0.0.1', null, { ...identity('n2'), incarnation: 'n2-2' }, () => undefined, () => undefined);
    listeners.push(listener);
    const events: string[] = [];
    const mesh = meshOfN1({
      linkUp: (peer, restarted) => void events.push(`up ${peer.node} ${peer.incarnation}${restarted ? ' restarted' : ''}`),
      linkDown: (peer, reason) => void events.push(`down ${peer.node}: ${reason}`),
    });
    const url = `ws://127.0.0.1:${listener.address().port}`;
    // The old process's key, not expired yet: the dial reaches the new process listening at its address.
    mesh.memberJoined({ node: 'n2', url, protocol: LINK_PROTOCOL_VERSION, incarnation: 'n2-1' });
    await until(() => events.length === 1, 'the link', 5000);
    mesh.memberJoined({ node: 'n2', url, protocol: LINK_PROTOCOL_VERSION, incarnation: 'n2-2' });
    // A link the mesh drops closes at once (its linkDown runs within memberJoined).
    assert.deepEqual(events, ['up n2 n2-2']);
    assert.equal(mesh.peers.get('n2')!.up, true);
  });

  it('a link is up for the cluster before any frame of it is handled, those sent during the handshake included', async () => {
    // The accepting side sends a frame the moment its handshake ends: it reaches the dialer with the handshake's last frame.
    const listener = await listenForLinks(0, '127.0.0.1', null, identity('n2'), (link) => link.send(new FrameWriter(FrameType.ForwardAck).uint(7).finish()), () => undefined);
    listeners.push(listener);
    const events: string[] = [];
    const mesh = meshOfN1({
      linkUp: (peer) => void events.push(`up ${peer.node}`),
      frame: (peer, reader) => void events.push(`frame ${peer.node} ${reader.type}:${reader.uint()}`),
    });
    mesh.memberJoined({ node: 'n2', url: `ws://127.0.0.1:${listener.address().port}`, protocol: LINK_PROTOCOL_VERSION, incarnation: 'n2-1' });
    await until(() => events.length === 2, 'the link and its frame', 5000);
    assert.deepEqual(events, ['up n2', `frame n2 ${FrameType.ForwardAck}:7`]);
  });
});
