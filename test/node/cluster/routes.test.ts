import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameReader, LinkProtocolError } from '../../../host/node/cluster/frame.js';
import { LocalRoutes, RemoteRoutes } from '../../../host/node/cluster/routes.js';

/** A peer's view of `local`, fed the frames `local` produces. */
function peerOf(): { remote: RemoteRoutes; changes: string[] } {
  const changes: string[] = [];
  const remote = new RemoteRoutes({ addRoute: (f) => changes.push(`+${f}`), removeRoute: (f) => changes.push(`-${f}`) });
  return { remote, changes };
}

describe('route announcements', () => {
  it('a filter is one route however many subscriptions hold it, announced when the first comes and withdrawn when the last goes', () => {
    let turns = 0;
    const local = new LocalRoutes(() => turns++);
    const { remote, changes } = peerOf();
    remote.apply(new FrameReader(local.snapshot()));
    for (let i = 0; i < 1000; i++) local.add('sensors/+/temp');
    local.add('$share/g/jobs/#');
    remote.apply(new FrameReader(local.delta()!));
    assert.deepEqual(changes, ['+sensors/+/temp', '+$share/g/jobs/#']);
    for (let i = 0; i < 999; i++) local.remove('sensors/+/temp');
    assert.equal(local.delta(), null, 'still held: nothing to say');
    local.remove('sensors/+/temp');
    remote.apply(new FrameReader(local.delta()!));
    assert.deepEqual(changes.slice(2), ['-sensors/+/temp']);
    assert.deepEqual([...remote.filters], ['$share/g/jobs/#']);
    assert.ok(turns >= 2);
  });

  it('changes that cancel out within a turn send nothing', () => {
    const local = new LocalRoutes(() => undefined);
    local.add('a');
    local.remove('a');
    assert.equal(local.delta(), null);
  });

  it('a new link gets a snapshot that replaces whatever the peer had; a delta out of sequence is a protocol error', () => {
    const local = new LocalRoutes(() => undefined);
    const { remote, changes } = peerOf();
    local.add('a');
    local.add('b');
    local.delta();
    remote.apply(new FrameReader(local.snapshot()));
    local.remove('a');
    local.add('c');
    local.delta(); // lost on the way
    local.add('d');
    assert.throws(() => remote.apply(new FrameReader(local.delta()!)), LinkProtocolError);
    remote.expectSnapshot();
    remote.apply(new FrameReader(local.snapshot()));
    assert.deepEqual([...remote.filters].sort(), ['b', 'c', 'd']);
    assert.deepEqual(changes, ['+a', '+b', '-a', '+c', '+d']);
    remote.clear();
    assert.equal(remote.size, 0);
  });
});
