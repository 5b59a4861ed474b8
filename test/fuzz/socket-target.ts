import { connect as netConnect } from 'node:net';
import type { MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { ArborServer } from '../../host/node/server.js';
import { ackReason, assertArenaEmpty, collect, connectClient } from '../helpers/broker.js';

/**
 * The same cases through real sockets: TCP and WebSocket listeners of one ArborServer, several cases
 * at a time, while a bystander MQTT.js client keeps exchanging messages with it. A case fails if the
 * broker does not let go of its connection after the client hung up (a hang) or hits an internal
 * error; the run fails if the bystander ever stops being served.
 */

/** After the fuzzer hangs up, how long the broker may take to close its end. */
const HANG_MS = 5000;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class SocketTarget {
  private stopped = false;
  private bystanderError: Error | null = null;
  private exchanging: Promise<void> = Promise.resolve();
  exchanged = 0;

  private constructor(
    readonly server: ArborServer,
    private readonly bystander: MqttClient,
  ) {}

  static async start(): Promise<SocketTarget> {
    const server = await ArborServer.start({
      listeners: [
        { port: 0, host: '127.0.0.1' },
        { protocol: 'ws', port: 0, host: '127.0.0.1' },
      ],
      memory: true,
    });
    const bystander = await connectClient(`mqtt://127.0.0.1:${server.port}`, { protocolVersion: 5, clientId: 'bystander' });
    await bystander.subscribeAsync('bystander/#', { qos: 1 });
    const target = new SocketTarget(server, bystander);
    bystander.on('close', () => (target.bystanderError ??= new Error('the bystander was disconnected')));
    target.exchanging = target.exchange();
    return target;
  }

  /** The bystander publishes to itself, one QoS 1 message after the other, until stop(). */
  private async exchange(): Promise<void> {
    while (!this.stopped && !this.bystanderError) {
      try {
        // 0x97: a fuzzed persistent session subscribed to # has a full queue; the bystander is still
        // served — told its message was refused, which then goes to nobody (so none is awaited).
        const reason = await ackReason(this.bystander.publishAsync('bystander/echo', `m${this.exchanged}`, { qos: 1 }));
        if (reason === 0x97) continue;
        if (reason >= 0x80) throw new Error(`the bystander's PUBLISH was refused with 0x${reason.toString(16)}`);
        // Counts a message that arrived before its PUBACK too.
        const [m] = await collect(this.bystander, 1, 5000);
        if (m!.payload.toString() !== `m${this.exchanged}`) throw new Error(`the bystander got ${m!.payload.toString()} instead of m${this.exchanged}`);
        this.exchanged++;
      } catch (error) {
        this.bystanderError ??= error as Error;
      }
    }
  }

  /** Sends the chunks over TCP (`ws` false) or WebSocket, one per event-loop turn, hangs up, and returns what went wrong. */
  async run(chunks: Uint8Array[], ws: boolean): Promise<string | null> {
    const internal = this.server.broker.metrics.internalErrors;
    const verdict = ws ? await this.overWebSocket(chunks) : await this.overTcp(chunks);
    if (verdict) return verdict;
    return this.server.broker.metrics.internalErrors > internal ? 'internal error' : null;
  }

  private overTcp(chunks: Uint8Array[]): Promise<string | null> {
    const [port] = this.server.addresses().map((a) => a.port);
    return new Promise((resolve) => {
      const socket = netConnect(port!, '127.0.0.1');
      let timer: NodeJS.Timeout | undefined;
      socket.on('data', () => undefined);
      socket.on('error', () => undefined);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(null);
      });
      socket.once('connect', async () => {
        for (const c of chunks) {
          if (socket.destroyed) return;
          socket.write(c);
          await nextTurn();
        }
        socket.end();
        timer = setTimeout(() => {
          socket.destroy();
          resolve('hang: the broker kept a TCP connection open after its client hung up');
        }, HANG_MS);
      });
    });
  }

  private overWebSocket(chunks: Uint8Array[]): Promise<string | null> {
    const address = this.server.addresses()[1]!;
    return new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${address.port}/mqtt`, ['mqtt']);
      let timer: NodeJS.Timeout | undefined;
      ws.on('error', () => undefined);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve(null);
      });
      ws.once('open', async () => {
        for (const c of chunks) {
          if (ws.readyState !== WebSocket.OPEN) return;
          ws.send(c);
          await nextTurn();
        }
        ws.close();
        timer = setTimeout(() => {
          ws.terminate();
          resolve('hang: the broker kept a WebSocket open after its client closed it');
        }, HANG_MS);
      });
    });
  }

  /** Stops the bystander, the broker, and asserts the arena is empty. Throws what the bystander met (once for the run). */
  async close(): Promise<void> {
    this.stopped = true;
    await this.exchanging;
    const error = this.bystanderError;
    await this.bystander.endAsync(true).catch(() => undefined);
    await this.server.close();
    await assertArenaEmpty(this.server.broker.core);
    if (error) throw error;
  }
}
