import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import mqtt, { type IClientOptions, MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { ClientLink } from '../../host/client/link.js';
import { inProcessPipe } from '../../host/bridge/in-process-pipe.js';
import { Broker } from '../../host/core/broker.js';
import type { BrokerOptions } from '../../host/core/model/options.js';
import type { Store } from '../../host/core/model/store.js';
import type { Core } from '../../host/core/wasm/core.js';
import { loadNodeCore } from '../../host/node/load-core.js';
import { ArborServer, type ServerOptions } from '../../host/node/server.js';
import { Peer } from './peer.js';
import { until } from './wait.js';

/** A broker under test, and the clients it closes with it. */
export interface TestBroker {
  broker: Broker;
  /** An MQTT.js client, connected (or the connection error), ended by close(). */
  client(options?: IClientOptions): Promise<MqttClient>;
  /** An MQTT.js client, connected (or the connection error), that the test ends itself. */
  connect(options?: IClientOptions): Promise<MqttClient>;
  /** A raw-packet peer (of `kind`, a Peer with a suite's vocabulary) with nothing sent yet, destroyed by close(). */
  raw<P extends Peer = Peer>(kind?: new () => P): Promise<P>;
  /** Waits until the broker has seen `clientId`'s connection go: its session has none (or ended with it). */
  offline(clientId: string): Promise<void>;
  /** Closes every client made through this helper, stops the broker, and asserts the arena is empty. */
  close(): Promise<void>;
}

/** A broker behind a real TCP listener (host/node): for what the wire and the server add. */
export interface ServerTestBroker extends TestBroker {
  server: ArborServer;
  port: number;
  url: string;
}

function tracking(
  broker: Broker,
  client: (options: IClientOptions) => Promise<MqttClient>,
  open: <P extends Peer>(peer: P) => Promise<P>,
  stop: () => Promise<void>,
): TestBroker {
  const clients: MqttClient[] = [];
  const peers: Peer[] = [];
  return {
    broker,
    connect: client,
    async client(options = {}) {
      const c = await client(options);
      clients.push(c);
      return c;
    },
    offline: (clientId) => until(() => !broker.sessions.get(clientId)?.outlet, `the broker to see ${clientId} go`),
    async raw<P extends Peer>(kind?: new () => P) {
      const p = await open(kind ? new kind() : (new Peer() as P));
      p.held = () => [...broker.connections].some((c) => c.remoteAddress === p.address);
      peers.push(p);
      return p;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      for (const p of peers) p.destroy();
      await stop();
      await assertArenaEmpty(broker.core);
    },
  };
}

/** Starts a server (host/node) with one TCP listener on an ephemeral loopback port. */
export async function startBroker(options: ServerOptions = {}): Promise<ServerTestBroker> {
  const server = await ArborServer.start({ listeners: [{ port: 0, host: '127.0.0.1' }], ...options });
  const port = server.port;
  const url = `mqtt://127.0.0.1:${port}`;
  const tested = tracking(
    server.broker,
    (o) => connectClient(url, o),
    (peer) => peer.tcp(port),
    async () => {
      await server.close();
    },
  );
  return { ...tested, server, port, url };
}

/**
 * Starts a broker (host/core alone) whose clients connect over in-memory links — the transport the
 * browser host uses — so a test of the broker's behaviour pays for no socket.
 */
export async function startCoreBroker(options: Partial<BrokerOptions> & { store?: Store } = {}): Promise<TestBroker> {
  const { store, ...brokerOptions } = options;
  const broker = new Broker(await loadNodeCore(), brokerOptions, store);
  await broker.start();
  let links = 0;
  const link = (address: string): ClientLink => {
    const { transport, link } = inProcessPipe(address);
    broker.accept(transport);
    return link;
  };
  return tracking(
    broker,
    (o) => connectOver(() => linkStream(link(`memory:${++links}`)), o),
    async (peer) => {
      const address = `memory:${++links}`;
      return peer.over(link(address), address);
    },
    () => broker.close(),
  );
}

/** Every arena buffer retained was released exactly once: nothing is live after shutdown. */
export async function assertArenaEmpty(core: Core): Promise<void> {
  await until(() => core.arenaStats().liveHandles === 0, `the arena to hold nothing (${core.arenaStats().liveHandles} buffers live)`, 1000).catch(() => undefined);
  const stats = core.arenaStats();
  assert.equal(stats.liveHandles, 0, `arena still holds ${stats.liveHandles} buffers: ${JSON.stringify(core.liveHandles().slice(0, 10))}`);
  assert.equal(stats.bytesInUse, 0);
  assert.equal(stats.errors, 0, 'no invalid ref/unref happened');
}

/** A Node stream over an in-memory link, for MQTT.js. */
function linkStream(link: ClientLink): Duplex {
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      link.send(Uint8Array.from(chunk));
      done();
    },
    final(done) {
      link.close();
      done();
    },
    destroy(error, done) {
      link.close();
      done(error);
    },
  });
  link.attach({
    data: (chunk) => stream.push(Buffer.from(chunk)),
    close: () => {
      stream.push(null);
      stream.destroy();
    },
  });
  return stream;
}

export interface Received {
  topic: string;
  payload: Buffer;
  packet: mqttPacket.IPublishPacket;
}

/** Every message each client received since it was created, so none is missed between awaits. */
const inboxes = new WeakMap<MqttClient, { messages: Received[]; taken: number; wake: (() => void) | null }>();

function connected(client: MqttClient): Promise<MqttClient> {
  const inbox = { messages: [] as Received[], taken: 0, wake: null as (() => void) | null };
  inboxes.set(client, inbox);
  client.on('message', (topic, payload, packet) => {
    inbox.messages.push({ topic, payload, packet });
    inbox.wake?.();
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => {
      client.removeListener('error', reject);
      resolve(client);
    });
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
}

const clientDefaults: IClientOptions = { reconnectPeriod: 0, connectTimeout: 5000 };

/** An MQTT.js client of the broker at `url` (TCP, TLS or WebSocket). */
export function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return connected(mqtt.connect(url, { ...clientDefaults, ...options }));
}

/** An MQTT.js client over the stream `open` makes. */
function connectOver(open: () => Duplex, options: IClientOptions): Promise<MqttClient> {
  return connected(new MqttClient(open, { ...clientDefaults, ...options }));
}

/** The reason code a QoS 1/2 publish was acknowledged with: MQTT.js resolves below 0x80 and rejects at 0x80 and up. */
export function ackReason(publish: Promise<unknown>): Promise<number> {
  return publish.then(
    (ack) => (ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
    (error: { code?: number }) => error.code ?? -1,
  );
}

/** The next `n` messages `client` receives (counting those already arrived and not yet taken); fails after `ms`. */
export async function collect(client: MqttClient, n: number, ms = 3000): Promise<Received[]> {
  const inbox = inboxes.get(client)!;
  await until(() => inbox.messages.length - inbox.taken >= n, `${n} messages (got ${JSON.stringify(inbox.messages.slice(inbox.taken).map((m) => m.topic))})`, ms);
  const out = inbox.messages.slice(inbox.taken, inbox.taken + n);
  inbox.taken += n;
  return out;
}

/** Every message `client` has received since it connected (including those before any listener was attached). */
export function received(client: MqttClient): readonly Received[] {
  return inboxes.get(client)!.messages;
}

/**
 * A PINGREQ answered on each client, in order: the broker has read what each sent before, and
 * what it sent each before answering has arrived.
 */
export async function roundTrip(...clients: MqttClient[]): Promise<void> {
  for (const client of clients) {
    await new Promise<void>((resolve, reject) => {
      const answered = (packet: Packet): void => {
        if (packet.cmd !== 'pingresp') return;
        client.off('packetreceive', answered);
        resolve();
      };
      client.on('packetreceive', answered);
      client.stream.write(mqttPacket.generate({ cmd: 'pingreq' }), (error) => error && reject(error));
    });
  }
}

/**
 * Asserts `client` received nothing beyond the messages already taken, once a round trip on each of
 * `senders` (whose packets could cause a message) and then on `client` settled what is in flight.
 */
export async function expectSilence(client: MqttClient, ...senders: MqttClient[]): Promise<void> {
  await roundTrip(...senders, client);
  const inbox = inboxes.get(client)!;
  assert.deepEqual(inbox.messages.slice(inbox.taken).map((m) => m.topic), [], 'no message expected');
}

/**
 * Asserts the next messages `client` receives, beyond those already taken, are exactly `expected`
 * ("topic=payload", in any order). For what crosses to another broker (a bridge, a cluster link):
 * markers published after whatever could still be on its way over the same path arrive after it, so
 * once they are in, nothing else is underway.
 */
export async function expectOnly(client: MqttClient, ...expected: string[]): Promise<void> {
  const got = await collect(client, expected.length, 5000);
  assert.deepEqual(got.map((m) => `${m.topic}=${m.payload}`).sort(), [...expected].sort(), 'nothing but these messages expected');
}
