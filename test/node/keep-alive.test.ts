import { describe, it } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { pace } from '../helpers/wait.js';

/** Keep alive over a real socket: what the event loop's order of timers and reads does to it. */
describe('keep alive over TCP', () => {
  it('[MQTT-3.1.2-24] keeps a client whose PINGREQ came in time but was still unread when the deadline fired (a broker running behind)', async () => {
    const b = await startBroker();
    try {
      const raw = await b.raw();
      await raw.handshake({ keepalive: 1 });
      // The client's own timing: its PINGREQ goes after 1 s, inside the 1.5 s the broker allows.
      await pace(1000);
      raw.send(new Uint8Array([0xc0, 0x00]));
      // The broker shares this thread: stall it past the deadline with the PINGREQ already in its
      // socket. Node runs timers before it reads sockets, so the deadline fires first.
      const stalledUntil = performance.now() + 1000;
      while (performance.now() < stalledUntil);
      await raw.next('pingresp');
      await raw.expectOpen();
    } finally {
      await b.close();
    }
  });
});
