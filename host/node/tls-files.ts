import { readFile } from 'node:fs/promises';
import { createSecureContext, type TlsOptions, type TLSSocket } from 'node:tls';
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
    rejectUnauthorized: requireCertificate,
    minVersion: 'TLSv1.2',
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
 * The subject common name of a verified client certificate, or undefined when there is none (no
 * certificate, not verified, or no CN).
 */
export function certificateCommonName(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cn = socket.getPeerCertificate()?.subject?.CN as string | string[] | undefined;
  const name = Array.isArray(cn) ? cn[0] : cn;
  return typeof name === 'string' && name.length > 0 ? name : undefined;
}
