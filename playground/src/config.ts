// Where the Node ArborMQ of the bridge demo listens: scripts/playground.ts serves it as /config.json.
// The host is the page's own, so the playground also works when served on another address.

export interface PlaygroundConfig {
  /** Port of the MQTT-over-WebSocket listener (path `wsPath`). */
  wsPort: number;
  wsPath: string;
  /** Port of the plain MQTT listener, for command-line tools (mosquitto_sub -p …). */
  mqttPort: number;
}

export interface RemoteBroker {
  wsUrl: string;
  mqttPort: number;
}

/** The Node broker's endpoints, or null when the page is served without one (then the bridge demo explains). */
export async function loadRemoteBroker(): Promise<RemoteBroker | null> {
  try {
    const response = await fetch('/config.json', { cache: 'no-store' });
    if (!response.ok) return null;
    const config = (await response.json()) as Partial<PlaygroundConfig>;
    if (typeof config.wsPort !== 'number' || typeof config.wsPath !== 'string') return null;
    // location.hostname keeps an IPv6 address in brackets, as a URL needs it.
    return { wsUrl: `ws://${location.hostname}:${config.wsPort}${config.wsPath}`, mqttPort: config.mqttPort ?? 0 };
  } catch {
    return null;
  }
}
