import type { Reason } from '../codec/constants.js';

/** What one step of an authentication exchange decided. */
export type AuthStep =
  /** Send `data` to the client in AUTH 0x18 and wait for its answer. */
  | { kind: 'continue'; data?: Uint8Array }
  /** Authenticated; `data` goes with CONNACK (or AUTH 0x00 on re-authentication). */
  | { kind: 'success'; data?: Uint8Array; username?: string }
  /** Refused: CONNACK (or DISCONNECT on re-authentication) with `reason`, default 0x87 Not authorized. */
  | { kind: 'failure'; reason?: Reason; message?: string };

/** One client's run through an authentication method: each client AUTH's data goes to step(). */
export interface AuthConversation {
  step(data: Uint8Array | undefined): Promise<AuthStep>;
}

/**
 * An MQTT 5.0 enhanced authentication method (§4.12), chosen by the Authentication Method property
 * of CONNECT. Methods are stateless; each exchange gets its own conversation.
 */
export interface AuthMethod {
  readonly name: string;
  start(clientId: string): AuthConversation;
}
