/** The Node package entry: a broker with listeners, and the pieces to embed it. */
export {
  ArborServer,
  type BridgeReport,
  type HttpListenerOptions,
  type ListenerOptions,
  type SecureWebSocketListenerOptions,
  type ServerBridgeOptions,
  type ServerOptions,
  type ShutdownResult,
  type TcpListenerOptions,
  type TlsListenerOptions,
  type WebSocketListenerOptions,
} from './server.js';
export { ConfigError } from './config-error.js';
export { loadConfig, type RunConfig } from './config.js';
export { jsonLogger } from './log.js';
export { loadNodeCore } from './load-core.js';
export { Acl, type AclRules } from './acl.js';
export { parseAcl, loadAclFile } from './acl-file.js';
export { PasswordFile, hashPassword, formatHash } from './password-file.js';
export { SocketTransport } from './socket-transport.js';
export { WebSocketTransport } from './websocket-transport.js';
export { Broker } from '../core/broker.js';
export { SysTopics, brokerStats, type BrokerStats } from '../core/sys.js';
export type { AuthDecision, AuthRequest, BrokerOptions, ClientInfo, Logger, LogLevel, ReadCheck, Reader } from '../core/model/options.js';
export type { Transport, TransportEvents } from '../core/transport.js';
