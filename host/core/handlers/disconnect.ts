import { Reason } from '../codec/constants.js';
import type { DisconnectPacket } from '../codec/packets.js';
import { protocolError } from '../codec/errors.js';
import { CloseKind } from '../model/outcomes.js';
import type { ClientContext } from './context.js';

/**
 * DISCONNECT from the client (§3.14): the will is discarded only on reason 0x00 (0x04 and errors keep it)
 * [MQTT-3.14.4-3]; a 5.0 client may change its session expiry, but not from 0 (§3.14.2.2.2).
 */
export function handleDisconnect(conn: ClientContext, packet: DisconnectPacket): void {
  const session = conn.session;
  if (!session) {
    // Still authenticating: no session yet, so nothing to change and no will to keep.
    conn.close(CloseKind.Graceful);
    return;
  }
  const expiry = packet.props.sessionExpiryInterval;
  if (expiry !== undefined) {
    if (session.expiryInterval === 0 && expiry !== 0) {
      throw protocolError('session expiry set on DISCONNECT after CONNECT set 0 (§3.14.2.2.2)');
    }
    session.expiryInterval = Math.min(expiry, conn.broker.options.maxSessionExpiry);
  }
  conn.close(packet.reason === Reason.Success ? CloseKind.Graceful : CloseKind.Abnormal);
}
