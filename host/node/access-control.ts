import { Reason } from '../core/codec/constants.js';
import type { QoS } from '../core/codec/packets.js';
import type { LogAggregator } from '../core/log-aggregator.js';
import type { AuthDecision, AuthRequest, BrokerOptions, ClientInfo } from '../core/options.js';
import type { Acl, Subject } from './acl.js';
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
}

type Hooks = Pick<BrokerOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'>;

/**
 * The Node server's authentication and authorization, as the core's hooks:
 *
 * - who a client is: the common name of its verified certificate (listeners with
 *   `useIdentityAsUsername`), else its user name checked against the password file (or by the
 *   embedder's hook), else anonymous — allowed only with `allowAnonymous`;
 * - failed authentications are limited per address (AuthFailures): over the limit, CONNECT is
 *   answered 0x9F Connection rate exceeded (3.1.1: 3 Server unavailable) without checking anything;
 * - what it may do: the ACL file, for the identity authentication established (a user name nobody
 *   verified is not trusted: such a client gets the anonymous rules);
 * - (clients never publish to topics starting with `$`: the core refuses that itself).
 */
export class AccessControl {
  readonly failures: AuthFailures;
  /** SUBSCRIBE filters the ACL refused, since start. */
  subscriptionsDenied = 0;

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

  /** Reads both files again (SIGHUP); on an error the rules in force stay and the error is thrown. */
  async reload(): Promise<void> {
    [this.passwords, this.acl] = await loadFiles(this.options);
  }

  /**
   * The core's hooks. The authorization hooks are installed only when there is something to check:
   * without them the core never decodes a topic into a string on the publish path.
   */
  hooks(): Hooks {
    const { aclFile, authorizePublish, authorizeSubscribe } = this.options;
    return {
      authenticate: (request) => this.authenticate(request),
      authorizePublish:
        aclFile !== undefined || authorizePublish ? (client, topic, qos, retain) => this.authorizePublish(client, topic, qos, retain) : undefined,
      authorizeSubscribe: aclFile !== undefined || authorizeSubscribe ? (client, filter, qos) => this.authorizeSubscribe(client, filter, qos) : undefined,
    };
  }

  private authenticate(request: AuthRequest): AuthDecision | Promise<AuthDecision> {
    const peer = this.gate.peers.get(request.remoteAddress);
    const address = peer?.ip ?? request.remoteAddress;
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

  private verify(request: AuthRequest, peer: Peer | undefined, address: string, attempt: Attempt): AuthDecision | Promise<AuthDecision> {
    const settle = (decision: AuthDecision, identity: string | undefined): AuthDecision | Promise<AuthDecision> => {
      if (decision !== true) return this.failed(request, address, attempt, decision);
      const extra = this.options.authenticate;
      if (!extra) return this.accepted(peer, identity);
      const answer = extra(identity === request.username ? request : { ...request, username: identity });
      const done = (d: AuthDecision): AuthDecision => (d === true ? this.accepted(peer, identity) : this.failed(request, address, attempt, d));
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

  private accepted(peer: Peer | undefined, identity: string | undefined): true {
    if (peer) {
      peer.authenticated = true;
      peer.identity = identity;
    }
    return true;
  }

  private failed(request: AuthRequest, address: string, attempt: Attempt, decision: AuthDecision): AuthDecision {
    attempt.settle(true);
    this.logs.note('info', 'authentication failed', address, {
      address: request.remoteAddress,
      client: request.clientId,
      username: request.username,
      reason: decision === false ? 'bad user name or password' : decision === true ? undefined : (decision.message ?? decision.reason),
    });
    return decision;
  }

  /** Whom the ACL decides about: the identity authentication established, when it was ours. */
  private subject(client: ClientInfo): Subject {
    const peer = this.gate.peers.get(client.remoteAddress);
    return { username: peer?.authenticated ? peer.identity : client.username, clientId: client.clientId };
  }

  private authorizePublish(client: ClientInfo, topic: string, qos: QoS, retain: boolean): boolean | Promise<boolean> {
    if (this.acl && !this.acl.canPublish(this.subject(client), topic)) return false;
    const extra = this.options.authorizePublish;
    return extra ? extra(client, topic, qos, retain) : true;
  }

  private authorizeSubscribe(client: ClientInfo, filter: string, qos: QoS): boolean | Promise<boolean> {
    if (this.acl && !this.acl.canSubscribe(this.subject(client), filter)) {
      this.subscriptionsDenied++;
      this.logs.note('info', 'subscription not authorized', client.clientId, { client: client.clientId, filter });
      return false;
    }
    const extra = this.options.authorizeSubscribe;
    return extra ? extra(client, filter, qos) : true;
  }
}

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
