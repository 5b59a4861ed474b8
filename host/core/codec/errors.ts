import { Reason } from './constants.js';

/**
 * A violation of the protocol by the peer. The connection it came on is closed; for MQTT 5.0
 * clients the reason code is sent first (in CONNACK before CONNECT completed, else DISCONNECT).
 */
export class ProtocolError extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export const malformed = (message: string): ProtocolError => new ProtocolError(Reason.MalformedPacket, message);
export const protocolError = (message: string): ProtocolError => new ProtocolError(Reason.ProtocolError, message);
