import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type WebSocket from 'ws';
import { FrameReader, FrameType, FrameWriter, LINK_PROTOCOL_VERSION, LinkProtocolError } from './frame.js';

/** Who this node is on its links. */
export interface LinkIdentity {
  cluster: string;
  node: string;
  /** Random per process start: a peer that sees a new one knows the node restarted (fresh sequence numbers). */
  incarnation: string;
  /** The shared secret, or null when links rely on mutual TLS alone. */
  secret: Buffer | null;
}

/** The peer a handshake authenticated. */
export interface PeerHello {
  node: string;
  incarnation: string;
  /** Frames the peer sent right behind the handshake, before the link took the socket over. */
  early: Buffer[];
}

/** What else a peer must satisfy (with TLS: its certificate names it); a reason to refuse, or null. */
export type PeerCheck = (node: string) => string | null;

/** A handshake that failed: `reason` is what the log says. */
export class HandshakeError extends Error {}

interface HelloFields {
  cluster: string;
  node: string;
  nonce: string;
  incarnation: string;
  mac?: string;
}

const HANDSHAKE_TIMEOUT_MS = 5000;
/** WebSocket close code of a refused link (4000–4999 are the application's). */
const REFUSED_CLOSE_CODE = 4001;

/**
 * The accepting side: sends a challenge, checks the dialer's version and its proof that it holds
 * the secret, and answers with its own proof. The secret itself never crosses the wire.
 */
export function accept(socket: WebSocket, self: LinkIdentity, verify: PeerCheck = () => null): Promise<PeerHello> {
  return handshake(socket, async (next) => {
    const nonce = randomBytes(16).toString('hex');
    send(socket, new FrameWriter(FrameType.Hello).u16(LINK_PROTOCOL_VERSION).json({ cluster: self.cluster, node: self.node, nonce, incarnation: self.incarnation }));
    const reader = await next(FrameType.Proof);
    const version = reader.u16();
    if (version !== LINK_PROTOCOL_VERSION) refuse(socket, incompatible(version));
    const proof = reader.json<HelloFields>();
    check(socket, proof, self);
    const problem = verify(proof.node);
    if (problem) refuse(socket, problem);
    if (self.secret && !macMatches(self.secret, 'dial', self.cluster, proof.node, self.node, nonce, proof.nonce, proof.mac)) {
      refuse(socket, `node ${JSON.stringify(proof.node)} did not prove the cluster secret`);
    }
    send(socket, new FrameWriter(FrameType.Welcome).json({ mac: self.secret ? mac(self.secret, 'accept', self.cluster, proof.node, self.node, nonce, proof.nonce) : '' }));
    return { node: proof.node, incarnation: proof.incarnation };
  });
}

/** The dialing side: answers the challenge with its proof and checks the acceptor's. */
export function dial(socket: WebSocket, self: LinkIdentity, expected: string, verify: PeerCheck = () => null): Promise<PeerHello> {
  return handshake(socket, async (next) => {
    const hello = await next(FrameType.Hello);
    const version = hello.u16();
    if (version !== LINK_PROTOCOL_VERSION) refuse(socket, incompatible(version));
    const fields = hello.json<HelloFields>();
    check(socket, fields, self);
    if (fields.node !== expected) refuse(socket, `dialed ${expected} but ${JSON.stringify(fields.node)} answered`);
    const problem = verify(fields.node);
    if (problem) refuse(socket, problem);
    const nonce = randomBytes(16).toString('hex');
    const proof = self.secret ? mac(self.secret, 'dial', self.cluster, self.node, fields.node, fields.nonce, nonce) : '';
    send(socket, new FrameWriter(FrameType.Proof).u16(LINK_PROTOCOL_VERSION).json({ cluster: self.cluster, node: self.node, nonce, incarnation: self.incarnation, mac: proof }));
    const welcome = (await next(FrameType.Welcome)).json<{ mac: string }>();
    if (self.secret && !macMatches(self.secret, 'accept', self.cluster, self.node, fields.node, fields.nonce, nonce, welcome.mac)) {
      refuse(socket, `node ${JSON.stringify(fields.node)} did not prove the cluster secret`);
    }
    return { node: fields.node, incarnation: fields.incarnation };
  });
}

async function handshake(socket: WebSocket, run: (next: (type: FrameType) => Promise<FrameReader>) => Promise<Omit<PeerHello, 'early'>>): Promise<PeerHello> {
  const { next, detach } = frames(socket);
  try {
    const peer = await run(next);
    return { ...peer, early: detach() };
  } catch (error) {
    detach();
    throw error;
  }
}

const incompatible = (theirs: number): string =>
  `incompatible link protocol: the peer speaks version ${theirs}, this node speaks version ${LINK_PROTOCOL_VERSION} (upgrade the nodes to one release)`;

function check(socket: WebSocket, fields: HelloFields, self: LinkIdentity): void {
  if (typeof fields.node !== 'string' || typeof fields.nonce !== 'string' || typeof fields.incarnation !== 'string') {
    refuse(socket, 'malformed handshake');
  }
  if (fields.cluster !== self.cluster) refuse(socket, `the peer belongs to cluster ${JSON.stringify(fields.cluster)}, not ${JSON.stringify(self.cluster)}`);
  if (fields.node === self.node) refuse(socket, `the peer has this node's id ${JSON.stringify(self.node)}`);
}

/** Tells the peer why, closes, and throws: the caller logs the reason. */
function refuse(socket: WebSocket, reason: string): never {
  if (socket.readyState === socket.OPEN) {
    socket.send(new FrameWriter(FrameType.Refuse).string(reason).finish());
    socket.close(REFUSED_CLOSE_CODE, 'refused');
  }
  throw new HandshakeError(reason);
}

function send(socket: WebSocket, frame: FrameWriter): void {
  socket.send(frame.finish());
}

/**
 * Waits for each handshake frame in turn; a Refuse, a close or the deadline fails the handshake.
 * detach() removes the listeners and returns the frames that arrived after the last one taken.
 */
function frames(socket: WebSocket): { next(type: FrameType): Promise<FrameReader>; detach(): Buffer[] } {
  const queue: Buffer[] = [];
  let waiter: ((frame: Buffer | Error) => void) | null = null;
  let failure: Error | null = null;
  const fail = (error: Error): void => {
    failure ??= error;
    waiter?.(error);
  };
  const onMessage = (data: Buffer, isBinary: boolean): void => {
    if (!isBinary) return fail(new HandshakeError('text frame during the handshake'));
    if (waiter) waiter(data);
    else queue.push(data);
  };
  const onClose = (code: number): void => fail(new HandshakeError(`the peer closed the link during the handshake (code ${code})`));
  const onError = (error: Error): void => fail(new HandshakeError(error.message));
  socket.on('message', onMessage);
  socket.on('close', onClose);
  socket.on('error', onError);
  const detach = (): Buffer[] => {
    socket.off('message', onMessage);
    socket.off('close', onClose);
    socket.off('error', onError);
    return queue.splice(0);
  };
  const next = (type: FrameType): Promise<FrameReader> =>
    new Promise<FrameReader>((resolve, reject) => {
      const timer = setTimeout(() => take(new HandshakeError('handshake timed out')), HANDSHAKE_TIMEOUT_MS);
      const take = (frame: Buffer | Error): void => {
        clearTimeout(timer);
        waiter = null;
        if (frame instanceof Error) return reject(frame);
        try {
          const reader = new FrameReader(frame);
          if (reader.type === FrameType.Refuse) throw new HandshakeError(`the peer refused the link: ${reader.string()}`);
          if (reader.type !== type) throw new LinkProtocolError(`expected handshake frame ${type}, got ${reader.type}`);
          resolve(reader);
        } catch (error) {
          reject(error instanceof HandshakeError ? error : new HandshakeError((error as Error).message));
        }
      };
      if (failure) return take(failure);
      const queued = queue.shift();
      if (queued) take(queued);
      else waiter = take;
    });
  return { next, detach };
}

function mac(secret: Buffer, role: 'dial' | 'accept', cluster: string, dialer: string, acceptor: string, acceptorNonce: string, dialerNonce: string): string {
  return createHmac('sha256', secret).update(`arbormq-link\n${role}\n${cluster}\n${dialer}\n${acceptor}\n${acceptorNonce}\n${dialerNonce}`).digest('hex');
}

function macMatches(secret: Buffer, role: 'dial' | 'accept', cluster: string, dialer: string, acceptor: string, acceptorNonce: string, dialerNonce: string, given: string | undefined): boolean {
  if (typeof given !== 'string') return false;
  const expected = Buffer.from(mac(secret, role, cluster, dialer, acceptor, acceptorNonce, dialerNonce), 'hex');
  const actual = Buffer.from(given, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
