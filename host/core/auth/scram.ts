import { Reason } from '../codec/constants.js';
import type { AuthConversation, AuthMethod, AuthStep } from './method.js';

/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) over MQTT 5.0 AUTH. The broker keeps only salted keys, never
 * passwords. Uses WebCrypto, so it runs in Node and in browsers alike.
 */
export interface ScramCredentials {
  salt: Uint8Array;
  iterations: number;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

export type ScramUserLookup = (username: string) => ScramCredentials | undefined | Promise<ScramCredentials | undefined>;

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** WebCrypto's types want ArrayBuffer-backed views; ours always are. */
const bytes = (u: Uint8Array): Uint8Array<ArrayBuffer> => u as Uint8Array<ArrayBuffer>;

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await subtle.importKey('raw', bytes(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, bytes(data)));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle.digest('SHA-256', bytes(data)));
}

/** Hi() of RFC 5802: PBKDF2-HMAC-SHA-256. */
async function saltedPassword(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await subtle.importKey('raw', bytes(utf8.encode(password.normalize('NFKC'))), 'PBKDF2', false, ['deriveBits']);
  return new Uint8Array(await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: bytes(salt), iterations }, key, 256));
}

/** Derives what the broker stores for a user from the password (done once, e.g. by a password tool). */
export async function scramCredentials(password: string, iterations = 4096, salt = randomBytes(16)): Promise<ScramCredentials> {
  const salted = await saltedPassword(password, salt, iterations);
  const clientKey = await hmac(salted, utf8.encode('Client Key'));
  return {
    salt,
    iterations,
    storedKey: await sha256(clientKey),
    serverKey: await hmac(salted, utf8.encode('Server Key')),
  };
}

export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

export const toBase64 = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes));
export const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** Parses "a=1,b=2" attribute lists; values may contain '='. */
export function scramAttributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** The client's and the server's shared computation of the proof and signature (RFC 5802 §3). */
export async function scramProofs(
  storedKeyOrSalted: { storedKey: Uint8Array; serverKey: Uint8Array },
  authMessage: string,
): Promise<{ clientSignature: Uint8Array; serverSignature: Uint8Array }> {
  const message = utf8.encode(authMessage);
  return {
    clientSignature: await hmac(storedKeyOrSalted.storedKey, message),
    serverSignature: await hmac(storedKeyOrSalted.serverKey, message),
  };
}

const fail = (message: string, reason: Reason = Reason.NotAuthorized): AuthStep => ({ kind: 'failure', reason, message });

class ScramConversation implements AuthConversation {
  private state: 'first' | 'final' | 'done' = 'first';
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private username = '';
  private credentials: ScramCredentials | undefined;

  constructor(private readonly lookup: ScramUserLookup) {}

  async step(data: Uint8Array | undefined): Promise<AuthStep> {
    let text: string;
    try {
      text = utf8Decoder.decode(data ?? new Uint8Array(0));
    } catch {
      return fail('SCRAM message is not UTF-8', Reason.MalformedPacket);
    }
    if (this.state === 'first') return this.first(text);
    if (this.state === 'final') return this.final(text);
    return fail('SCRAM exchange already finished', Reason.ProtocolError);
  }

  private async first(text: string): Promise<AuthStep> {
    // gs2 header: no channel binding ("n,,"); "y" also allowed, "p=" not supported.
    if (!text.startsWith('n,') && !text.startsWith('y,')) return fail('SCRAM channel binding is not supported', Reason.BadAuthenticationMethod);
    const bare = text.slice(text.indexOf(',', 2) + 1);
    const attrs = scramAttributes(bare);
    const user = attrs.get('n');
    const clientNonce = attrs.get('r');
    if (!user || !clientNonce) return fail('SCRAM client-first-message lacks n= or r=', Reason.MalformedPacket);
    this.username = user.replace(/=2C/g, ',').replace(/=3D/g, '=');
    this.credentials = await this.lookup(this.username);
    // An unknown user gets a made-up salt so the exchange looks the same; it fails at the proof.
    const creds = this.credentials ?? { salt: randomBytes(16), iterations: 4096 };
    this.clientFirstBare = bare;
    this.nonce = clientNonce + toBase64(randomBytes(18));
    this.serverFirst = `r=${this.nonce},s=${toBase64(creds.salt)},i=${creds.iterations}`;
    this.state = 'final';
    return { kind: 'continue', data: utf8.encode(this.serverFirst) };
  }

  private async final(text: string): Promise<AuthStep> {
    this.state = 'done';
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) return fail('SCRAM client-final-message lacks p=', Reason.MalformedPacket);
    const withoutProof = text.slice(0, proofAt);
    const attrs = scramAttributes(text);
    if (attrs.get('r') !== this.nonce) return fail('SCRAM nonce mismatch');
    const creds = this.credentials;
    if (!creds) return fail('unknown user or wrong password', Reason.BadUserNameOrPassword);
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const { clientSignature, serverSignature } = await scramProofs(creds, authMessage);
    let proof: Uint8Array;
    try {
      proof = fromBase64(attrs.get('p') ?? '');
    } catch {
      return fail('SCRAM proof is not base64', Reason.MalformedPacket);
    }
    if (proof.length !== clientSignature.length) return fail('unknown user or wrong password', Reason.BadUserNameOrPassword);
    const clientKey = proof.map((b, i) => b ^ clientSignature[i]!);
    const storedKey = await sha256(clientKey);
    if (!constantTimeEqual(storedKey, creds.storedKey)) return fail('unknown user or wrong password', Reason.BadUserNameOrPassword);
    return { kind: 'success', data: utf8.encode(`v=${toBase64(serverSignature)}`), username: this.username };
  }
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** The built-in SCRAM-SHA-256 method; `users` gives each user's stored credentials. */
export function scramSha256(users: ScramUserLookup | Map<string, ScramCredentials>): AuthMethod {
  const lookup: ScramUserLookup = users instanceof Map ? (name) => users.get(name) : users;
  return {
    name: 'SCRAM-SHA-256',
    start: () => new ScramConversation(lookup),
  };
}
