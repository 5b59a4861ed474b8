import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * The client side of SCRAM-SHA-256 (RFC 5802 / 7677), written independently of the broker's
 * implementation with node:crypto, so the two check each other.
 */
export class ScramClient {
  readonly nonce = randomBytes(18).toString('base64');
  private clientFirstBare: string;
  private serverSignature: Buffer | null = null;

  constructor(
    readonly username: string,
    private readonly password: string,
  ) {
    this.clientFirstBare = `n=${username.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${this.nonce}`;
  }

  first(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`);
  }

  /** Answers the server-first-message with the client-final-message. */
  final(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString();
    const attrs = new Map(text.split(',').map((kv) => [kv[0]!, kv.slice(2)] as [string, string]));
    const nonce = attrs.get('r')!;
    if (!nonce.startsWith(this.nonce)) throw new Error('server nonce does not extend ours');
    const salted = pbkdf2Sync(this.password, Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const clientSignature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ clientSignature[i]!));
    const serverKey = createHmac('sha256', salted).update('Server Key').digest();
    this.serverSignature = createHmac('sha256', serverKey).update(authMessage).digest();
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** True when the server-final-message proves the server knows the password's keys. */
  verify(serverFinal: Buffer): boolean {
    return serverFinal.toString() === `v=${this.serverSignature!.toString('base64')}`;
  }
}
