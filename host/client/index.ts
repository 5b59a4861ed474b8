/** ArborMQ's MQTT client: a small 3.1.1 / 5.0 client over any byte link. */
import { MqttClient } from './client.js';
import type { ConnectOptions } from './types.js';
import { WebSocketLink, type WebSocketConstructor } from './websocket-link.js';

export { MqttClient } from './client.js';
export { ConnectionClosedError, ConnectRefusedError, ReasonCodeError } from './errors.js';
export type { ClientLink, ClientLinkEvents } from './link.js';
export { topicMatches } from './topic-match.js';
export type * from './types.js';
export { WebSocketLink, type WebSocketConstructor, type WebSocketLike } from './websocket-link.js';

/** Connects to a broker's MQTT-over-WebSocket endpoint (`ws://host:port/mqtt`). */
export async function connectWebSocket(url: string, options: ConnectOptions & { WebSocketImpl?: WebSocketConstructor } = {}): Promise<MqttClient> {
  const link = await WebSocketLink.open(url, { timeoutMs: options.connectTimeoutMs, WebSocketImpl: options.WebSocketImpl });
  return MqttClient.connect(link, options);
}
