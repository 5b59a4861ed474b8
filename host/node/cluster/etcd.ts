import type { Etcd3 } from 'etcd3';

export type { Etcd3 };

/** Where the cluster's keys live in etcd. */
export interface EtcdKeys {
  /** `/arbormq/<cluster>/members/` + node id → the member's link URL and protocol version. */
  members: string;
  /** `/arbormq/<cluster>/sessions/` + client id → the node owning the persistent session. */
  sessions: string;
  /**
   * `/arbormq/<cluster>/homes/` + client id → the node whose store holds the persistent session. Bound
   * to no lease: it outlives a node that is restarting, so nobody starts the session afresh meanwhile.
   */
  homes: string;
}

export function etcdKeys(cluster: string): EtcdKeys {
  const root = `/arbormq/${cluster}/`;
  return { members: `${root}members/`, sessions: `${root}sessions/`, homes: `${root}homes/` };
}

/** Each request gets this long before it fails (the caller decides whether to try again). */
const REQUEST_DEADLINE_MS = 2000;

/**
 * An etcd client. `etcd3` (and gRPC under it) is imported here, on first use: a node without a
 * cluster setting never loads it. Its default fault handling — three retries, then a circuit
 * breaker that stops trying for five seconds — is replaced by one attempt per call with a short
 * deadline, and watches reconnect every half second: the cluster's own loops decide when to retry,
 * and a returning etcd is noticed at once.
 */
export async function connectEtcd(hosts: string[]): Promise<Etcd3> {
  const { Etcd3 } = await import('etcd3');
  const once = { execute: <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T) => Promise.resolve().then(() => fn({ signal: new AbortController().signal })) };
  const steady = { duration: 500, next: () => steady };
  return new Etcd3({
    hosts,
    dialTimeout: REQUEST_DEADLINE_MS,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + REQUEST_DEADLINE_MS }),
    faultHandling: { host: () => once as never, global: once as never, watchBackoff: steady as never },
  });
}
