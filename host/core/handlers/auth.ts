import { Reason } from '../codec/constants.js';
import * as generate from '../codec/generate.js';
import type { AuthPacket } from '../codec/packets.js';
import type { Properties } from '../codec/properties.js';
import { protocolError } from '../codec/errors.js';
import { completeConnect, refuse } from './connect.js';
import type { ClientContext } from './context.js';

/**
 * Enhanced authentication (§4.12): the CONNECT names a method, client and broker exchange AUTH
 * packets until the method decides, then CONNACK. A connected client may re-authenticate with AUTH
 * 0x19 using the same method [MQTT-4.12.1-1]; failure then ends the connection.
 */
export function startAuthentication(conn: ClientContext, methodName: string, data: Uint8Array | undefined): void {
  const method = conn.broker.options.authMethods.find((m) => m.name === methodName);
  if (!method) {
    refuse(conn, Reason.BadAuthenticationMethod, `authentication method ${JSON.stringify(methodName)} is not supported`);
    return;
  }
  conn.state.auth = { method, conversation: method.start(conn.state.pendingConnect?.clientId ?? conn.clientId), busy: false, reauthenticating: false };
  step(conn, data);
}

/** AUTH from the client (§3.15). */
export function handleAuth(conn: ClientContext, packet: AuthPacket): void {
  const auth = conn.state.auth;
  const method = packet.props.authenticationMethod;
  if (!auth) throw protocolError('AUTH without an authentication method in CONNECT [MQTT-4.12.0-7]');
  if (method !== auth.method.name) throw protocolError('AUTH names a different authentication method than CONNECT [MQTT-4.12.0-5]');
  if (auth.busy) throw protocolError('AUTH sent before the previous one was answered');
  if (conn.connecting || auth.reauthenticating) {
    if (packet.reason !== Reason.ContinueAuthentication) throw protocolError(`AUTH with reason 0x${packet.reason.toString(16)} during an exchange`);
  } else if (packet.reason === Reason.ReAuthenticate) {
    auth.conversation = auth.method.start(conn.clientId);
    auth.reauthenticating = true;
  } else {
    throw protocolError(`AUTH with reason 0x${packet.reason.toString(16)} outside an exchange`);
  }
  step(conn, packet.props.authenticationData);
}

function step(conn: ClientContext, data: Uint8Array | undefined): void {
  const auth = conn.state.auth!;
  auth.busy = true;
  auth.conversation.step(data).then(
    (result) => {
      auth.busy = false;
      if (!conn.open) return;
      const props: Properties = { authenticationMethod: auth.method.name };
      if (result.kind === 'continue') {
        if (result.data) props.authenticationData = result.data;
        conn.send(generate.auth(Reason.ContinueAuthentication, props));
        return;
      }
      if (result.kind === 'success') {
        if (result.data) props.authenticationData = result.data;
        conn.authenticated(result.username ?? conn.username);
        if (conn.connecting) {
          completeConnect(conn, props);
        } else {
          auth.reauthenticating = false;
          conn.send(generate.auth(Reason.Success, props));
        }
        return;
      }
      const reason = result.reason ?? Reason.NotAuthorized;
      const message = result.message ?? 'authentication failed';
      if (conn.connecting) {
        refuse(conn, reason, message);
      } else {
        // DISCONNECT has no "bad user name or password" or "bad method" code (§3.14.2.1): those become Not authorized.
        const disconnectReason = reason === Reason.BadUserNameOrPassword || reason === Reason.BadAuthenticationMethod ? Reason.NotAuthorized : reason;
        conn.disconnect(disconnectReason, { reasonString: message });
      }
    },
    (error: unknown) => conn.fail(error),
  );
}
