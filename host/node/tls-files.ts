import { readFile } from 'node:fs/promises';
import { createSecureContext, type TlsOptions, type TLSSocket } from 'node:tls';
import type { LogAggregator } from '../core/model/log-aggregator.js';
import { ConfigError } from './config-error.js';
import type { TlsFileOptions } from './listener-options.js';

/** Reads a TLS listener's certificate files into Node's TLS server options; an unreadable file names its field. */
export async function loadTlsOptions(files: TlsFileOptions, where: string): Promise<TlsOptions> {
  const read = async (field: keyof TlsFileOptions, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new ConfigError(`${where}.${field}`, `cannot read ${path}: ${(error as Error).message}`);
    }
  };
  const [cert, key, ca] = await Promise.all([
    read('certFile', files.certFile),
    read('keyFile', files.keyFile),
    files.caFile === undefined ? undefined : read('caFile', files.caFile),
  ]);
  const requireCertificate = files.requireCertificate === true;
  const options: TlsOptions = {
    cert,
    key,
    ...(ca ? { ca } : {}),
    requestCert: requireCertificate,
    // Verified by refuseUnverified() instead: Node would drop the connection without a word.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
  };
  // Made once here so that a key that does not parse or match fails now, naming the files — at start
  // and, on a reload, before anything has been changed.
  try {
    createSecureContext(options);
  } catch (error) {
    throw new ConfigError(where, `certFile ${files.certFile} and keyFile ${files.keyFile} do not make a usable TLS identity: ${(error as Error).message}`);
  }
  return options;
}

/**
 * TLS 1.2 suites offered: forward secrecy (ECDHE) and authenticated encryption (AES-GCM, ChaCha20)
 * only — no CBC with SHA-1, no static RSA, nothing weaker. TLS 1.3's suites are all of that kind and
 * are left as Node has them.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Why a TLS handshake failed, in words an operator can act on (OpenSSL's reason where none fits). */
export function describeTlsFailure(error: Error & { code?: string }): string {
  const m = error.message.toLowerCase();
  if (m.includes('unsupported protocol') || m.includes('version too low')) return 'the client offers only TLS versions older than 1.2';
  if (m.includes('no shared cipher') || m.includes('no suitable')) return 'no cipher suite in common: the client offers only suites without forward secrecy or authenticated encryption';
  if (m.includes('peer did not return a certificate')) return 'the client sent no certificate, and this listener requires one';
  if (m.includes('certificate verify failed') || m.includes('unknown ca')) {
    return m.includes('alert') ? 'the client does not trust the server certificate' : 'the client certificate is not signed by the CA of caFile (or has expired)';
  }
  if (m.includes('bad certificate') || m.includes('certificate unknown')) return 'the client does not trust the server certificate';
  if (m.includes('http request')) return 'the client spoke plain text (HTTP?) to a TLS port';
  if (m.includes('wrong version number') || m.includes('packet length too long')) return 'the client did not speak TLS';
  if (error.code === 'ECONNRESET' || m.includes('socket hang up')) return 'the client closed the connection during the handshake';
  if (error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'the handshake did not finish in time (connectTimeoutMs)';
  return error.message.split(':').slice(-2, -1)[0]?.trim() || error.message;
}

/**
 * The subject common name of a verified client certificate, or undefined when there is none (no
 * certificate, not verified, or no CN).
 */
export function certificateCommonName(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cn = socket.getPeerCertificate()?.subject?.CN as string | string[] | undefined;
  const name = Array.isArray(cn) ? cn[0] : cn;
  return typeof name === 'string' && name.length > 0 ? name : undefined;
}

/** Certificate verification results (OpenSSL's codes) in words. */
const CERTIFICATE_ERRORS: Record<string, string> = {
  UNABLE_TO_GET_ISSUER_CERT: 'it is not signed by the CA of caFile',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'it is not signed by the CA of caFile',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'it is not signed by the CA of caFile',
  SELF_SIGNED_CERT_IN_CHAIN: 'it is not signed by the CA of caFile',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed',
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: 'it is not valid yet',
  CERT_SIGNATURE_FAILURE: 'its signature does not verify',
  CERT_REVOKED: 'it is revoked',
  INVALID_PURPOSE: 'it is not meant for client authentication',
};

/**
 * On a listener that requires client certificates: closes a connection whose certificate is missing
 * or does not verify, logging why (per address, aggregated), and returns true. Node's own
 * rejectUnauthorized would close it without telling anyone.
 */
export function refuseUnverified(socket: TLSSocket, logs: LogAggregator, listener: string): boolean {
  if (socket.authorized) return false;
  const certificate = socket.getPeerCertificate();
  const code = String((socket.authorizationError as unknown as { code?: string } | undefined)?.code ?? socket.authorizationError ?? '');
  const reason =
    certificate === null || Object.keys(certificate).length === 0
      ? 'the client sent no certificate, and this listener requires one'
      : `the client certificate was refused: ${CERTIFICATE_ERRORS[code] ?? code}`;
  logs.note('info', 'connection refused: client certificate', socket.remoteAddress ?? '', { listener, address: socket.remoteAddress, reason, code });
  socket.destroy();
  return true;
}
