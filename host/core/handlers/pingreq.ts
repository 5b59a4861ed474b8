import * as generate from '../codec/generate.js';
import type { ClientContext } from './context.js';

/** PINGREQ is answered with PINGRESP [MQTT-3.12.4-1]. */
export function handlePingreq(conn: ClientContext): void {
  conn.send(generate.pingresp());
}
