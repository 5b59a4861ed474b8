// CPU time per message of the host path without sockets, to compare revisions on a noisy machine:
// clients over in-process pipes, `p2p` a QoS 1 publisher (10 in flight) → one QoS 1 subscriber that
// PUBACKs, `fanin` 8 QoS 0 publishers → 1 subscriber. ROOT is a built checkout (its dist/).
//   node bench/in-process.mjs ROOT p2p|fanin
import { pathToFileURL } from 'node:url';
import mqttPacket from 'mqtt-packet';
const root = process.argv[2];
const imp = (p) => import(pathToFileURL(`${root}/dist/${p}`).href);
const { Broker } = await imp('host/core/broker.js');
const { loadNodeCore } = await imp('host/node/load-core.js');
const { inProcessPipe } = await imp('host/bridge/in-process-pipe.js');
const gen = (p) => mqttPacket.generate(p);
const broker = new Broker(await loadNodeCore(), { maxQueuedMessages: 1e6, maxInflight: 100 });
await broker.start();
const turn = () => new Promise((r) => setImmediate(r));

function client(id, onPublish) {
  const { transport, link } = inProcessPipe(id);
  broker.accept(transport);
  let pending = Buffer.alloc(0);
  const c = { link, connacked: false, subacked: false, onPublish };
  link.attach({
    data: (chunk) => {
      pending = pending.length ? Buffer.concat([pending, Buffer.from(chunk)]) : Buffer.from(chunk);
      for (;;) {
        if (pending.length < 2) break;
        let len = 0, mul = 1, i = 1;
        for (; i < 5; i++) { const b = pending[i]; if (b === undefined) return; len += (b & 127) * mul; mul *= 128; if (!(b & 128)) break; }
        const total = 1 + i + len;
        if (pending.length < total) break;
        const type = pending[0] >> 4;
        if (type === 2) c.connacked = true;
        else if (type === 9) c.subacked = true;
        else if (type === 3) c.onPublish?.(pending.subarray(0, total), pending[0], i + 1);
        pending = pending.subarray(total);
      }
    },
    close: () => {},
  });
  link.send(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: id, clean: true, keepalive: 0 }));
  return c;
}
const until = async (f) => { while (!f()) await turn(); };

async function p2p(n) {
  let got = 0;
  const sub = client('sub', (raw, h, at) => {
    got++;
    if (((h >> 1) & 3) === 1) {
      const tl = (raw[at] << 8) | raw[at + 1];
      const id = (raw[at + 2 + tl] << 8) | raw[at + 3 + tl];
      sub.link.send(Buffer.from([0x40, 2, id >> 8, id & 255]));
    }
  });
  await until(() => sub.connacked);
  sub.link.send(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'p2p/t', qos: 1 }] }));
  await until(() => sub.subacked);
  const pub = client('pub');
  await until(() => pub.connacked);
  const payload = Buffer.alloc(64, 1);
  const window = 10;
  const start = process.cpuUsage();
  let sent = 0;
  while (got < n) {
    while (sent < n && sent - got < window) { sent++; pub.link.send(gen({ cmd: 'publish', topic: 'p2p/t', payload, qos: 1, messageId: (sent % 65535) + 1 })); }
    await turn();
  }
  const u = process.cpuUsage(start);
  return (u.user + u.system) / n; // µs per message
}

async function fanIn(n) {
  let got = 0;
  const sub = client('fsub', () => void got++);
  await until(() => sub.connacked);
  sub.link.send(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'bench/#', qos: 0 }] }));
  await until(() => sub.subacked);
  const pubs = Array.from({ length: 8 }, (_, i) => client(`fpub${i}`));
  await until(() => pubs.every((p) => p.connacked));
  const packet = gen({ cmd: 'publish', topic: 'bench/x', payload: Buffer.alloc(64, 1), qos: 0 });
  const batch = Buffer.concat(Array(50).fill(packet));
  const start = process.cpuUsage();
  let sent = 0;
  while (got < n) {
    if (sent - got < 4000) for (const p of pubs) { p.link.send(batch); sent += 50; }
    await turn();
  }
  const u = process.cpuUsage(start);
  return (u.user + u.system) / n;
}

const which = process.argv[3];
const r = which === 'p2p' ? await p2p(100_000) : await fanIn(400_000);
console.log(JSON.stringify({ root, which, usPerMsg: Number(r.toFixed(3)) }));
process.exit(0);
