import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { ArborServer, type ServerOptions } from '../../host/node/server.js';

export interface TestBroker {
  server: ArborServer;
  port: number;
  url: string;
  /** Closes every client made through this helper, stops the broker, and asserts the arena is empty. */
  close(): Promise<void>;
  client(options?: IClientOptions): Promise<MqttClient>;
  raw(): Promise<RawClient>;
}

/** Starts a broker on an ephemeral loopback port. */
export async function startBroker(options: ServerOptions = {}): Promise<TestBroker> {
  const server = await ArborServer.start({ listeners: [{ port: 0, host: '127.0.0.1' }], ...options });
  const port = server.port;
  const url = `mqtt://127.0.0.1:${port}`;
  const clients: MqttClient[] = [];
  const raws: RawClient[] = [];
  return {
    server,
    port,
    url,
    async client(opts = {}) {
      const c = await connectClient(url, opts);
      clients.push(c);
      return c;
    },
    async raw() {
      const r = await RawClient.connect(port);
      raws.push(r);
      return r;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      for (const r of raws) r.destroy();
      await server.close();
      await assertArenaEmpty(server);
    },
  };
}

/** Every arena buffer retained was released exactly once: nothing is live after shutdown. */
export async function assertArenaEmpty(server: ArborServer): Promise<void> {
  const core = server.broker.core;
  await until(() => core.arenaStats().liveHandles === 0, 1000);
  const stats = core.arenaStats();
  assert.equal(stats.liveHandles, 0, `arena still holds ${stats.liveHandles} buffers: ${JSON.stringify(core.liveHandles().slice(0, 10))}`);
  assert.equal(stats.bytesInUse, 0);
  assert.equal(stats.errors, 0, 'no invalid retain/release happened');
}

export interface Received {
  topic: string;
  payload: Buffer;
  packet: mqttPacket.IPublishPacket;
}

/** Every message each client received since it was created, so none is missed between awaits. */
const inboxes = new WeakMap<MqttClient, { messages: Received[]; taken: number; wake: (() => void) | null }>();

export function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    const inbox = { messages: [] as Received[], taken: 0, wake: null as (() => void) | null };
    inboxes.set(client, inbox);
    client.on('message', (topic, payload, packet) => {
      inbox.messages.push({ topic, payload, packet });
      inbox.wake?.();
    });
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

/** The reason code a QoS 1/2 publish was acknowledged with: MQTT.js resolves below 0x80 and rejects at 0x80 and up. */
export function ackReason(publish: Promise<unknown>): Promise<number> {
  return publish.then(
    (ack) => (ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
    (error: { code?: number }) => error.code ?? -1,
  );
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()` holds, checking every 5 ms for up to `ms` (a loaded machine is slower, never faster). */
export async function until(done: () => boolean, ms = 2000): Promise<void> {
  for (const deadline = Date.now() + ms; !done() && Date.now() < deadline; ) await delay(5);
}

/** Waits until the asynchronous `check` holds (polled every 50 ms); throws naming `what` after `ms`. */
export async function eventually(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  for (const deadline = Date.now() + ms; ; await delay(50)) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  }
}

/** The next `n` messages `client` receives (counting those already arrived and not yet taken); fails after `ms`. */
export async function collect(client: MqttClient, n: number, ms = 3000): Promise<Received[]> {
  const inbox = inboxes.get(client)!;
  const deadline = Date.now() + ms;
  while (inbox.messages.length - inbox.taken < n) {
    const left = deadline - Date.now();
    if (left <= 0) {
      const got = inbox.messages.slice(inbox.taken).map((m) => m.topic);
      throw new Error(`expected ${n} messages, got ${got.length}: ${JSON.stringify(got)}`);
    }
    await Promise.race([new Promise<void>((r) => (inbox.wake = r)), delay(left)]);
  }
  const out = inbox.messages.slice(inbox.taken, inbox.taken + n);
  inbox.taken += n;
  return out;
}

/** Every message `client` has received since it connected (including those before any listener was attached). */
export function received(client: MqttClient): readonly Received[] {
  return inboxes.get(client)!.messages;
}

/** Asserts no message beyond those already taken arrives on `client` within `ms`. */
export async function expectSilence(client: MqttClient, ms = 200): Promise<void> {
  const inbox = inboxes.get(client)!;
  await delay(ms);
  assert.deepEqual(inbox.messages.slice(inbox.taken).map((m) => m.topic), [], 'no message expected');
}

/**
 * A bare TCP client for raw packets: sends bytes as given, decodes what the broker answers with
 * mqtt-packet, and tells when the broker closes the connection.
 */
export class RawClient {
  readonly packets: Packet[] = [];
  readonly closed: Promise<void>;
  private waiters: (() => void)[] = [];
  private parser: ReturnType<typeof mqttPacket.parser>;

  private constructor(readonly socket: Socket) {
    this.parser = mqttPacket.parser({ protocolVersion: 5 });
    this.parser.on('packet', (p: Packet) => {
      this.packets.push(p);
      for (const w of this.waiters.splice(0)) w();
    });
    this.parser.on('error', () => undefined);
    socket.on('data', (d) => this.parser.parse(d));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Sets the protocol level the answers are decoded with (mqtt-packet needs it for 5.0 properties). */
  version(v: 3 | 4 | 5): this {
    (this.parser as unknown as { settings: { protocolVersion: number } }).settings.protocolVersion = v;
    return this;
  }

  send(bytes: Uint8Array | number[]): void {
    this.socket.write(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
  }

  sendPacket(packet: mqttPacket.Packet, protocolVersion: 3 | 4 | 5 = 4): void {
    this.send(mqttPacket.generate(packet, { protocolVersion }));
  }

  /** Resolves with the next packet of `cmd` (already received or arriving within `ms`). */
  async next(cmd: Packet['cmd'], ms = 2000): Promise<Packet> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.packets.findIndex((p) => p.cmd === cmd);
      if (i >= 0) return this.packets.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${cmd} within ${ms} ms; got ${this.packets.map((p) => p.cmd).join(',')}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), delay(left), this.closed]);
      if (this.socket.destroyed && !this.packets.some((p) => p.cmd === cmd)) {
        throw new Error(`connection closed before ${cmd}; got ${this.packets.map((p) => p.cmd).join(',')}`);
      }
    }
  }

  /** Resolves when the broker has closed the connection; fails after `ms`. */
  async expectClosed(ms = 2000): Promise<void> {
    await Promise.race([
      this.closed,
      delay(ms).then(() => {
        throw new Error(`connection still open after ${ms} ms`);
      }),
    ]);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** CONNECT with sane defaults, then waits for CONNACK. */
  async handshake(options: Partial<mqttPacket.IConnectPacket> = {}): Promise<mqttPacket.IConnackPacket> {
    const protocolVersion = (options.protocolVersion ?? 4) as 3 | 4 | 5;
    this.version(protocolVersion);
    this.send(connectBytes(options));
    return (await this.next('connack')) as mqttPacket.IConnackPacket;
  }
}

/**
 * CONNECT bytes from mqtt-packet, which refuses some combinations a test needs to send (an empty
 * client id with CleanSession=0): those are generated with CleanSession=1 and the flag cleared.
 */
export function connectBytes(options: Partial<mqttPacket.IConnectPacket> = {}): Buffer {
  const protocolVersion = (options.protocolVersion ?? 4) as 3 | 4 | 5;
  const packet = {
    cmd: 'connect',
    protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion,
    keepalive: 60,
    clientId: `raw-${Math.random().toString(36).slice(2)}`,
    ...options,
    clean: true,
  } as mqttPacket.IConnectPacket;
  const bytes = mqttPacket.generate(packet, { protocolVersion });
  if (options.clean === false) {
    let i = 1;
    while (bytes[i]! & 0x80) i++;
    const flags = i + 1 + 2 + (protocolVersion === 3 ? 6 : 4) + 1;
    bytes[flags]! &= ~0x02;
  }
  return bytes;
}
