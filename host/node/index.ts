/** The Node package entry: a broker with listeners, and the pieces to embed it. */
export { ArborServer, type ServerOptions, type TcpListenerOptions } from './server.js';
export { loadNodeCore } from './load-core.js';
export { Broker } from '../core/broker.js';
export type { BrokerOptions, Logger, LogLevel } from '../core/options.js';
export type { Transport, TransportEvents } from '../core/transport.js';
