// What a tab needs to reach a broker without any network, wherever the broker runs (this realm or
// the SharedWorker): native clients over an in-page link, and MQTT.js's endpoint options.
import { MqttClient } from '../client/client.js';
import type { ClientLink } from '../client/link.js';
import type { InPageConnectOptions, MqttJsEndpoint } from './api.js';
import { tapLink } from './packet-tap.js';

/** The host name MQTT.js is given for the in-page endpoint (never resolved: no network is involved). */
const IN_PAGE_HOST = 'arbormq.in-page';

/**
 * In-page connections default to no keep alive: nothing between client and broker can fail
 * silently (the pipe closes with either end; the worker watches each tab's lock), while browsers
 * throttle the timers of hidden tabs to a minute or more, which would make the broker drop idle
 * clients of a background tab for a missed PINGREQ.
 */
export const IN_PAGE_KEEP_ALIVE = 0;

/** A native client over an in-page link (pipe or MessagePort), tapped when `onPacket` asks for it. */
export function connectInPage(link: ClientLink, options: InPageConnectOptions): Promise<MqttClient> {
  const { onPacket, ...connect } = options;
  return MqttClient.connect(onPacket ? tapLink(link, onPacket) : link, { keepAlive: IN_PAGE_KEEP_ALIVE, ...connect });
}

/** The MQTT.js options that reach an in-page endpoint through `createWebsocket`. */
export function inPageEndpoint(createWebsocket: MqttJsEndpoint['createWebsocket']): MqttJsEndpoint {
  return { protocol: 'ws', hostname: IN_PAGE_HOST, port: 80, path: '/mqtt', createWebsocket };
}

/** MQTT.js options for the in-page endpoint: `extra` wins, except where the endpoint is. */
export function mqttJsOptions<T extends object>(extra: T | undefined, createWebsocket: MqttJsEndpoint['createWebsocket']): T & MqttJsEndpoint {
  return { keepalive: IN_PAGE_KEEP_ALIVE, ...(extra as T), ...inPageEndpoint(createWebsocket) };
}
