// Everything `arbormq/browser` exports besides createBroker, which each entry (index.ts, inline.ts)
// defines with its own way of finding the wasm core.
export type { BridgeHandle, BrokerMode, BrokerSettings, BrowserBroker, BrowserBrokerStats, CreateBrokerOptions, InPageConnectOptions, MqttJsEndpoint } from './api.js';
export type { ArenaSnapshot, BrokerSnapshot, HandleSnapshot, InspectOptions, RetainedSnapshot, SessionSnapshot, SubscriptionSnapshot } from '../inspect/inspect.js';
export { tapLink, type PacketDirection, type PacketEvent, type PacketName, type PacketObserver } from './packet-tap.js';
export type { BridgeConfig, BridgeDirection, BridgeState, BridgeStatus, BridgeTopic } from '../bridge/bridge-config.js';
export { InPageWebSocket } from './in-page-websocket.js';
export { MqttClient } from '../client/client.js';
export { ConnectionClosedError, ConnectRefusedError, ReasonCodeError } from '../client/errors.js';
export { WebSocketLink } from '../client/websocket-link.js';
export { connectWebSocket } from '../client/index.js';
export type * from '../client/types.js';
