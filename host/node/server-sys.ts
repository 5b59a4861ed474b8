import type { Broker } from '../core/broker.js';
import { SysTopics, type SysOptions } from '../core/sys.js';
import type { BridgeReport } from './bridges.js';

/**
 * The broker's `$SYS/broker/…` topics plus the server's own: each bridge's state under
 * `$SYS/broker/bridges/{name}/` — `state` (connecting, online, waiting, stopped), `connected`
 * (1 or 0, as Mosquitto's `$SYS/broker/connection/{name}/state`), `queued`, `messages/sent`,
 * `messages/received`.
 */
export class ServerSysTopics extends SysTopics {
  constructor(
    broker: Broker,
    options: SysOptions,
    private readonly bridges: () => BridgeReport[],
  ) {
    super(broker, options);
  }

  override values(): [string, string][] {
    const out = super.values();
    for (const b of this.bridges()) {
      const at = `$SYS/broker/bridges/${b.name}/`;
      out.push(
        [`${at}state`, b.state],
        [`${at}connected`, b.state === 'online' ? '1' : '0'],
        [`${at}queued`, String(b.queued)],
        [`${at}messages/sent`, String(b.sent)],
        [`${at}messages/received`, String(b.received)],
      );
    }
    return out;
  }
}
