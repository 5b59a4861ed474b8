import { Reason } from '../core/codec/constants.js';
import type { QoS } from '../core/codec/packets.js';
import type { LogAggregator } from '../core/model/log-aggregator.js';
import type { AuthDecision, AuthRequest, BrokerOptions, ClientInfo, ReadCheck, Reader } from '../core/model/options.js';
import type { Acl } from './acl.js';
import { loadAclFile } from './acl-file.js';
import { type Attempt, AuthFailures, type AuthFailurePolicy } from './auth-failures.js';
import { ConfigError } from './config-error.js';
import type { ConnectionGate, Peer } from './connection-gate.js';
import { PasswordFile } from './password-file.js';

export interface AccessControlOptions {
  /** May clients connect without a user name (and without a client certificate identity)? */
  allowAnonymous: boolean;
  passwordFile: string | undefined;
  aclFile: string | undefined;
  authFailures: AuthFailurePolicy;
  /** An embedder's own hooks: consulted after the server's checks pass, and both must allow. */
  authenticate: BrokerOptions['authenticate'];
  authorizePublish: BrokerOptions['authorizePublish'];
  authorizeSubscribe: BrokerOptions['authorizeSubscribe'];
  readAccess: BrokerOptions['readAccess'];
}

type Hooks = Pick<BrokerOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'readAccess'>;

/**
 * The Node server's authentication and authorization, as the core's hooks:
 *
 * - who a client is: the common name of its verified certificate (listeners with
 *   `useIdentityAsUsername`), else its user name checked against the password file (or by the
 *   embedder's hook), else anonymous — allowed only with `allowAnonymous`;
 * - failed authentications are limited per address (AuthFailures): over the limit, CONNECT is
 *   answered 0x9F Connection rate exceeded (3.1.1: 3 Server unavailable) without checking anything;
 * - what it may do: the ACL file, for the identity authentication established — which becomes the
 *   client's user name in the core (a user name nobody verified is not trusted: such a client is
 *   anonymous) — for each PUBLISH, will, SUBSCRIBE and, through the read check, each delivery;
 * - (clients never publish to `$SYS`: the core refuses that itself).
 */
export class AccessControl {
  readonly failures: AuthFailures;
  /** SUBSCRIBE filters the ACL refused, since start. */
  subscriptionsDenied = 0;
  /** The server's own in-process clients (its bridges' local sessions): transport label → the client identifier reserved for it. */
  private readonly internal = new Map<string, string>();
  private readonly reserved = new Set<string>();

  private constructor(
    private readonly options: AccessControlOptions,
    private readonly gate: ConnectionGate,
    private readonly logs: LogAggregator,
    private passwords: PasswordFile | null,
    private acl: Acl | null,
  ) {
    this.failures = new AuthFailures(options.authFailures);
  }

  /** Reads the password and ACL files; a file that cannot be used fails with its line and reason. */
  static async create(options: AccessControlOptions, gate: ConnectionGate, logs: LogAggregator): Promise<AccessControl> {
    const [passwords, acl] = await loadFiles(options);
    return new AccessControl(options, gate, logs, passwords, acl);
  }

  /**
   * Reads both files again (SIGHUP); on an error the rules in force stay and the error is thrown.
   * Read checks handed out before stay with the old rules: the broker asks for new ones
   * (Broker.readAccessChanged) once this resolves.
   */
  async reload(): Promise<void> {
    (await this.prepareReload())();
  }

  /** Reads both files; the function it resolves with puts them in force (so a reload of several things can fail before changing any). */
  async prepareReload(): Promise<() => void> {
    const [passwords, acl] = await loadFiles(this.options);
    return () => {
      this.passwords = passwords;
      this.acl = acl;
    };
  }

  get hasPasswordFile(): boolean {
    return this.options.passwordFile !== undefined;
  }

  get hasAclFile(): boolean {
    return this.options.aclFile !== undefined;
  }

  /**
   * Trusts the in-process connections labelled `label` (never a network peer's label) as the server's
   * own client `clientId`: no password, no ACL, every read. No other connection may use `clientId`.
   */
  trustInternal(label: string, clientId: string): void {
    this.internal.set(label, clientId);
    this.reserved.add(clientId);
  }

  /** An in-process connection of the server's own (see trustInternal). */
  private isInternal(remoteAddress: string): boolean {
    return this.internal.has(remoteAddress) && !this.gate.peers.has(remoteAddress);
  }

  /**
   * The core's hooks. The authorization hooks are installed only when there is something to check:
   * without them the core never decodes a topic into a string on the publish path.
   */
  hooks(): Hooks {
    const { aclFile, authorizePublish, authorizeSubscribe, readAccess } = this.options;
    return {
      authenticate: (request) => this.authenticate(request),
      authorizePublish:
        aclFile !== undefined || authorizePublish ? (client, topic, qos, retain) => this.authorizePublish(client, topic, qos, retain) : undefined,
      authorizeSubscribe: aclFile !== undefined || authorizeSubscribe ? (client, filter, qos) => this.authorizeSubscribe(client, filter, qos) : undefined,
      readAccess: aclFile !== undefined || readAccess ? (reader) => this.readAccess(reader) : undefined,
    };
  }

  private authenticate(request: AuthRequest): AuthDecision | Promise<AuthDecision> {
    if (this.isInternal(request.remoteAddress)) {
      return request.clientId === this.internal.get(request.remoteAddress) ? { username: undefined } : { reason: Reason.ClientIdentifierNotValid };
    }
    if (this.reserved.has(request.clientId)) {
      this.logs.note('info', 'connection refused: the client identifier belongs to a bridge', request.remoteAddress, { address: request.remoteAddress, client: request.clientId });
      return { reason: Reason.ClientIdentifierNotValid, message: 'this client identifier belongs to one of the server\'s bridges' };
    }
    const peer = this.gate.peers.get(request.remoteAddress);
    const address = peer?.ip ?? request.remoteAddress;
    // Nothing to verify and nothing held against the address: the attempt could only succeed, so none is tracked.
    if (this.anonymousAccepted(request, peer) && this.failures.isClear(address)) return ANONYMOUS;
    const admitted = this.failures.admit(address);
    if (admitted instanceof Promise) return admitted.then((attempt) => this.check(request, peer, address, attempt));
    return this.check(request, peer, address, admitted);
  }

  /** Checks an admitted attempt (null: the address is over the limit); the attempt settles with the outcome. */
  private check(request: AuthRequest, peer: Peer | undefined, address: string, attempt: Attempt | null): AuthDecision | Promise<AuthDecision> {
    if (!attempt) {
      this.logs.note('warn', 'authentication refused: too many failures from this address', address, { address: request.remoteAddress, client: request.clientId });
      return { reason: Reason.ConnectionRateExceeded, message: 'too many failed authentications from this address; try again later' };
    }
    let decision: AuthDecision | Promise<AuthDecision>;
    try {
      decision = this.verify(request, peer, address, attempt);
    } catch (error) {
      attempt.settle(false);
      throw error;
    }
    // An embedder's hook that throws settles the attempt without counting it as a failure.
    if (decision instanceof Promise) return decision.finally(() => attempt.settle(false));
    attempt.settle(false);
    return decision;
  }

  /** What verify() accepts as anonymous without checking anything (no certificate, password file or hook has a say). */
  private anonymousAccepted(request: AuthRequest, peer: Peer | undefined): boolean {
    return this.options.allowAnonymous && peer?.certificateIdentity === undefined && !this.options.authenticate && (request.username === undefined || !this.passwords);
  }

  private verify(request: AuthRequest, peer: Peer | undefined, address: string, attempt: Attempt): AuthDecision | Promise<AuthDecision> {
    const settle = (decision: AuthDecision, identity: string | undefined): AuthDecision | Promise<AuthDecision> => {
      if (decision !== true) return this.failed(request, address, attempt, decision);
      const extra = this.options.authenticate;
      if (!extra) return { username: identity };
      const answer = extra(identity === request.username ? request : { ...request, username: identity });
      const done = (d: AuthDecision): AuthDecision =>
        d === true ? { username: identity } : typeof d === 'object' && 'username' in d ? d : this.failed(request, address, attempt, d);
      return answer instanceof Promise ? answer.then(done) : done(answer);
    };

    if (peer?.certificateIdentity !== undefined) return settle(true, peer.certificateIdentity);
    const username = request.username;
    if (username !== undefined && this.passwords) {
      const passwords = this.passwords;
      return passwords.verify(username, request.password).then((ok) => settle(ok, username));
    }
    if (username !== undefined && this.options.authenticate) {
      // The embedder's hook is what verifies this user name.
      return settle(true, username);
    }
    if (!this.options.allowAnonymous) {
      return this.failed(request, address, attempt, {
        reason: Reason.NotAuthorized,
        message: username === undefined ? 'anonymous clients are not allowed' : 'there is nothing to check this user name against',
      });
    }
    return settle(true, undefined);
  }

  private failed(request: AuthRequest, address: string, attempt: Attempt, decision: AuthDecision): AuthDecision {
    attempt.settle(true);
    this.logs.note('info', 'authentication failed', address, {
      address: request.remoteAddress,
      client: request.clientId,
      username: request.username,
      reason: decision === false ? 'bad user name or password' : typeof decision === 'object' && 'reason' in decision ? (decision.message ?? decision.reason) : undefined,
    });
    return decision;
  }

  private authorizePublish(client: ClientInfo, topic: string, qos: QoS, retain: boolean): boolean | Promise<boolean> {
    if (this.isInternal(client.remoteAddress)) return true;
    if (this.acl && !this.acl.canPublish(client, topic)) return false;
    const extra = this.options.authorizePublish;
    return extra ? extra(client, topic, qos, retain) : true;
  }

  private authorizeSubscribe(client: ClientInfo, filter: string, qos: QoS): boolean | Promise<boolean> {
    if (this.isInternal(client.remoteAddress)) return true;
    if (this.acl && !this.acl.canSubscribe(client, filter)) {
      this.subscriptionsDenied++;
      this.logs.note('info', 'subscription not authorized', client.clientId, { client: client.clientId, filter });
      return false;
    }
    const extra = this.options.authorizeSubscribe;
    return extra ? extra(client, filter, qos) : true;
  }

  /** The ACL's check for the reader, and the embedder's if there is one (both must allow). */
  private readAccess(reader: Reader): ReadCheck {
    if (this.reserved.has(reader.clientId)) return READS_EVERYTHING;
    const rules = this.acl?.readCheck(reader);
    const extra = this.options.readAccess?.(reader);
    if (!extra) return rules!;
    if (!rules) return extra;
    return { shared: askEachSession, own: (topic) => (rules.shared(topic) ?? rules.own(topic)) && (extra.shared(topic) ?? extra.own(topic)) };
  }
}

/** An anonymous client accepted. */
const ANONYMOUS: AuthDecision = Object.freeze({ username: undefined });

/** The check of the server's own clients: a bridge carries whatever its topics say. */
const READS_EVERYTHING: ReadCheck = { shared: () => true, own: () => true };

/** The shared half of a check that has no answer shared with other sessions. */
const askEachSession = (): undefined => undefined;

/** Both files, or a ConfigError naming the setting whose file cannot be used. */
async function loadFiles(options: AccessControlOptions): Promise<[PasswordFile | null, Acl | null]> {
  const field = (name: string) => (error: Error) => {
    throw new ConfigError(name, error.message);
  };
  return Promise.all([
    options.passwordFile === undefined ? null : PasswordFile.load(options.passwordFile).catch(field('passwordFile')),
    options.aclFile === undefined ? null : loadAclFile(options.aclFile).catch(field('aclFile')),
  ]);
}
