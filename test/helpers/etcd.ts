// The cluster tests' etcd is the one the benchmarks use too.
export { etcdMissing, startEtcd, type LocalEtcd as TestEtcd } from '../../scripts/etcd.js';
