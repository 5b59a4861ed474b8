// The marker that keeps bridged brokers from passing a message round forever: a chain is carried
// on, a message that comes back to a broker it has been on is not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { markInbound, markOutbound, newBrokerId, VIA_PROPERTY, viaPath } from '../../host/bridge/loop-marker.js';

const via = (...ids: string[]) => ({ userProperties: ids.map((id): [string, string] => [VIA_PROPERTY, id]) });

describe('bridge loop marker', () => {
  it('outbound: a message gets this broker added, and other user properties stay in order', () => {
    const props = markOutbound({ contentType: 'text/plain', userProperties: [['k', 'v']], subscriptionIdentifiers: [3] }, 'A')!;
    assert.deepEqual(props, { contentType: 'text/plain', userProperties: [['k', 'v'], [VIA_PROPERTY, 'A']] });
  });

  it('outbound: a message that came in through this broker\'s own bridge goes on unchanged (a chain)', () => {
    assert.deepEqual(viaPath(markOutbound(via('E', 'H'), 'H')!), ['E', 'H']);
  });

  it('outbound: a message that left this broker before and came back is not carried again', () => {
    assert.equal(markOutbound(via('A', 'B'), 'A'), null);
  });

  it('inbound: carried in with this broker added, unless it has been here', () => {
    assert.deepEqual(viaPath(markInbound(via('B'), 'A')!), ['B', 'A']);
    assert.deepEqual(viaPath(markInbound({}, 'A')!), ['A']);
    assert.equal(markInbound(via('A', 'B'), 'A'), null);
    assert.equal(markInbound(via('B', 'A'), 'A'), null);
  });

  it('broker identities differ', () => {
    const ids = new Set(Array.from({ length: 100 }, newBrokerId));
    assert.equal(ids.size, 100);
    for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
  });
});
