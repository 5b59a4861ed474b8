import * as generate from '../codec/generate.js';
import type { Connection } from '../connection.js';

/** PINGREQ is answered with PINGRESP [MQTT-3.12.4-1]. */
export function handlePingreq(conn: Connection): void {
  conn.sendBytes(generate.pingresp());
}
