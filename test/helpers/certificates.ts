import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM files of a throwaway PKI made with openssl for one test file: a CA, a server and client certificates. */
export interface TestPki {
  dir: string;
  caFile: string;
  /** Server certificate for 127.0.0.1 / localhost, signed by the CA. */
  certFile: string;
  keyFile: string;
  /** A client certificate (and key) with the given common name, signed by the CA. */
  client(commonName: string): Promise<{ cert: Buffer; key: Buffer }>;
  /** A cluster node's certificate (server and client use, for 127.0.0.1) naming the node: `cn`. */
  node(commonName: string): Promise<{ cert: Buffer; key: Buffer }>;
  /** A client certificate signed by a different, untrusted CA. */
  stranger(): Promise<{ cert: Buffer; key: Buffer }>;
  /** Deletes every file. */
  remove(): Promise<void>;
}

const openssl = (cwd: string, ...args: string[]): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

/** EC P-256 keys: generated in milliseconds, unlike RSA. */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function createPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'arbormq-pki-'));
  const make = async (name: string, subject: string, ca: { cert: string; key: string }, extensions: string): Promise<void> => {
    openssl(dir, 'req', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    await writeFile(join(dir, `${name}.ext`), extensions);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
  };
  const read = async (name: string): Promise<{ cert: Buffer; key: Buffer }> => {
    return { cert: await readFile(join(dir, `${name}.crt`)), key: await readFile(join(dir, `${name}.key`)) };
  };
  openssl(dir, 'req', '-x509', ...NEW_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=ArborMQ test CA', '-days', '2');
  const ca = { cert: 'ca.crt', key: 'ca.key' };
  await make('server', '/CN=localhost', ca, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  let clients = 0;
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    async client(commonName) {
      const name = `client${++clients}`;
      await make(name, `/CN=${commonName}`, ca, 'extendedKeyUsage=clientAuth\n');
      return read(name);
    },
    async node(commonName) {
      const name = `node${++clients}`;
      await make(name, `/CN=${commonName}`, ca, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
      return read(name);
    },
    async stranger() {
      openssl(dir, 'req', '-x509', ...NEW_KEY, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-subj', '/CN=Someone else', '-days', '2');
      await make('stranger', '/CN=stranger', { cert: 'other-ca.crt', key: 'other-ca.key' }, 'extendedKeyUsage=clientAuth\n');
      return read('stranger');
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
