import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClusterStatus } from './cluster.js';
import { clusterFromEnv, clusterFromFile, clusterFromFlags, type ClusterSettings } from './config.js';
import { connectEtcd, etcdKeys } from './etcd.js';
import type { MemberInfo } from './membership.js';
import { CLUSTER_DEFAULTS } from './options.js';

const USAGE = `Usage: arbormq cluster status [-c config.json] [--cluster-etcd URL[,URL]] [--cluster-name NAME] [--json]

Lists the cluster's members as etcd has them and, from each member's HTTP endpoint (/cluster),
its lease, its links to the other members with their route counts and traffic. Exit code 0 when
every member is healthy, 1 otherwise.
`;

const HTTP_TIMEOUT_MS = 2000;

/** `arbormq cluster …`. */
export async function clusterCommand(argv: string[], out = process.stdout, err = process.stderr): Promise<number> {
  if (argv[0] !== 'status') {
    err.write(argv[0] === undefined || argv[0] === '--help' || argv[0] === '-h' ? USAGE : `arbormq cluster: unknown command ${JSON.stringify(argv[0])}\n\n${USAGE}`);
    return argv[0] === '--help' || argv[0] === '-h' ? 0 : 2;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: argv.slice(1),
      options: { config: { type: 'string', short: 'c' }, 'cluster-etcd': { type: 'string' }, 'cluster-name': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    err.write(`arbormq cluster status: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    out.write(USAGE);
    return 0;
  }
  let settings: ClusterSettings | undefined;
  let token: string | undefined;
  try {
    settings = await settingsFrom(values.config, values['cluster-etcd']);
    token = await adminToken(values.config);
  } catch (error) {
    err.write(`arbormq cluster status: ${(error as Error).message}\n`);
    return 2;
  }
  const name = values['cluster-name'] ?? settings?.name ?? CLUSTER_DEFAULTS.name;
  if (!settings?.etcd) {
    err.write('arbormq cluster status: name etcd with --cluster-etcd, ARBORMQ_CLUSTER_ETCD or a config file\n');
    return 2;
  }
  const etcd = await connectEtcd(settings.etcd);
  let members: MemberInfo[];
  try {
    const prefix = etcdKeys(name).members;
    const kvs = await etcd.getAll().prefix(prefix).exec();
    members = kvs.kvs.map((kv) => ({ ...(JSON.parse(kv.value.toString()) as MemberInfo), node: kv.key.toString().slice(prefix.length) }));
  } catch (error) {
    err.write(`arbormq cluster status: cannot read the members from etcd (${settings.etcd.join(', ')}): ${(error as Error).message}\n`);
    return 1;
  } finally {
    etcd.close();
  }
  members.sort((a, b) => (a.node < b.node ? -1 : 1));
  const views = await Promise.all(members.map((m) => view(m, token)));
  if (values.json) {
    out.write(`${JSON.stringify({ cluster: name, members: members.map((m, i) => ({ ...m, status: views[i] })) }, null, 2)}\n`);
  } else {
    out.write(`cluster ${name}: ${members.length} member${members.length === 1 ? '' : 's'} in etcd ${settings.etcd.join(',')}\n`);
    members.forEach((m, i) => out.write(describe(m, views[i]!)));
  }
  return views.every((v) => typeof v !== 'string' && v.healthy) ? 0 : 1;
}

async function settingsFrom(config: string | undefined, etcdFlag: string | undefined): Promise<ClusterSettings | undefined> {
  let settings: ClusterSettings | undefined;
  const path = config ?? process.env.ARBORMQ_CONFIG;
  if (path) {
    const file = JSON.parse(await readFile(resolve(path), 'utf8')) as { cluster?: unknown };
    if (file.cluster !== undefined) settings = clusterFromFile(file.cluster, `${path}: cluster`, dirname(resolve(path)));
  }
  return clusterFromFlags(clusterFromEnv(settings, process.env, process.cwd()), { etcd: etcdFlag }, process.cwd());
}

/** The admin token the members' /cluster asks for when their admin API is on (http.adminTokenFile). */
async function adminToken(config: string | undefined): Promise<string | undefined> {
  let file = process.env.ARBORMQ_HTTP_ADMIN_TOKEN_FILE;
  const path = config ?? process.env.ARBORMQ_CONFIG;
  if (file === undefined && path) {
    const http = (JSON.parse(await readFile(resolve(path), 'utf8')) as { http?: { adminTokenFile?: unknown } }).http;
    if (typeof http?.adminTokenFile === 'string') file = resolve(dirname(resolve(path)), http.adminTokenFile);
  }
  return file === undefined ? undefined : (await readFile(file, 'utf8')).trim();
}

/** A member's own view (its /cluster), or why it could not be had. */
async function view(member: MemberInfo, token: string | undefined): Promise<ClusterStatus | string> {
  if (!member.http) return 'no HTTP endpoint: links unknown';
  try {
    const headers = token === undefined ? undefined : { Authorization: `Bearer ${token}` };
    const res = await fetch(`${member.http}/cluster`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS), headers });
    if (!res.ok) return `${member.http}/cluster answered ${res.status}`;
    return (await res.json()) as ClusterStatus;
  } catch (error) {
    return `${member.http}/cluster: ${(error as Error).message}`;
  }
}

function replicationLine(r: ClusterStatus['replication']): string {
  const fenced = r.fenced ? 'FENCED (lease not proven: persistent sessions closed here), ' : '';
  return `  replication factor ${r.factor}: ${fenced}${r.replicatedSessions} sessions replicated to buddies (${r.unacknowledged} frames unacknowledged${r.buddiesBehind > 0 ? `, ${r.buddiesBehind} buddies behind` : ''}), ${r.replicaSessions} kept for others, ${r.failovers} taken over from replicas`;
}

function describe(member: MemberInfo, status: ClusterStatus | string): string {
  const head = `\n${member.node}  ${member.url}  protocol ${member.protocol}`;
  if (typeof status === 'string') return `${head}\n  ${status}\n`;
  const lines = [
    `${head}  ${status.healthy ? 'healthy' : 'NOT HEALTHY'}`,
    `  lease ${status.lease ? 'held' : 'NOT HELD'} (${status.leaseLosses} lost), etcd round trip ${status.etcdRttMs} ms, ${status.routes} routes announced, ${status.ownedSessions} sessions owned`,
    replicationLine(status.replication),
  ];
  for (const p of status.peers) {
    lines.push(
      `  -> ${p.node.padEnd(12)} ${p.up ? 'up  ' : 'DOWN'}  ${String(p.routes).padStart(6)} routes  out ${p.messagesOut} msgs / ${p.bytesOut} B  in ${p.messagesIn} msgs / ${p.bytesIn} B  buffered ${p.buffered} B  unconfirmed ${p.unconfirmed}  dropped ${p.dropped}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
