import type { ClientLink, ClientLinkEvents } from '../client/link.js';
import type { Transport, TransportEvents } from '../core/transport.js';
import type { PortControl } from './port-protocol.js';

/**
 * Both ends of a client connection that crosses from a tab to the SharedWorker over a
 * MessagePort. MQTT bytes travel as transferred Uint8Arrays (no copy on the way); the receiver
 * returns credits for what it consumed, so the sender knows its backlog (the broker's slow-consumer
 * rule needs writableLength). A MessagePort tells nobody when its other side dies: an explicit
 * `{ close }` message ends a connection, and the worker watches each tab's Web Lock for the rest.
 */
abstract class PortEnd {
  /** Bytes sent and not yet credited back by the other side. */
  protected unacknowledged = 0;
  private credit = 0;
  private creditScheduled = false;
  protected closed = false;

  constructor(protected readonly port: MessagePort) {
    port.onmessage = (event: MessageEvent<Uint8Array | PortControl>) => {
      const data = event.data;
      if (data instanceof Uint8Array) this.receive(data);
      else if ('credit' in data) this.unacknowledged -= data.credit;
      else if ('close' in data) this.peerClosed();
    };
    port.start();
  }

  protected abstract receive(bytes: Uint8Array): void;
  protected abstract closeEvents(): void;
  /** The peer closed: hand on what it sent before (its DISCONNECT, say) even if reading is paused. */
  protected abstract drain(): void;

  /** Sends bytes, transferring their buffer. */
  protected post(bytes: Uint8Array): void {
    this.unacknowledged += bytes.length;
    this.port.postMessage(bytes, [bytes.buffer]);
  }

  /** Credits consumed bytes back, once per tick whatever the number of messages. */
  protected consumed(n: number): void {
    this.credit += n;
    if (this.creditScheduled) return;
    this.creditScheduled = true;
    queueMicrotask(() => {
      this.creditScheduled = false;
      if (this.closed || this.credit === 0) return;
      this.port.postMessage({ credit: this.credit } satisfies PortControl);
      this.credit = 0;
    });
  }

  /** Tells the other side, then closes this side on a later microtask. */
  protected shut(notify: boolean): void {
    if (this.closed) return;
    this.closed = true;
    if (notify) this.port.postMessage({ close: true } satisfies PortControl);
    this.port.close();
    queueMicrotask(() => this.closeEvents());
  }

  private peerClosed(): void {
    if (this.closed) return;
    this.drain();
    this.closed = true;
    this.port.close();
    this.closeEvents();
  }
}

/** The worker's end: a broker Transport. */
export class PortTransport extends PortEnd implements Transport {
  private events: TransportEvents | null = null;
  private paused = false;
  private held: Uint8Array[] = [];

  constructor(
    port: MessagePort,
    readonly remoteAddress: string,
    /** Runs once when the connection is over, whoever ended it. */
    private readonly onClosed?: () => void,
  ) {
    super(port);
  }

  get writableLength(): number {
    return this.unacknowledged;
  }

  attach(events: TransportEvents): void {
    this.events = events;
  }

  write(chunks: Uint8Array[], done: () => void): void {
    if (this.closed) {
      done();
      return;
    }
    // The chunks may be views of wasm memory, valid until done(): the tab gets a copy, transferred.
    let length = 0;
    for (const c of chunks) length += c.length;
    const frame = new Uint8Array(length);
    let at = 0;
    for (const c of chunks) {
      frame.set(c, at);
      at += c.length;
    }
    done();
    this.post(frame);
  }

  end(): void {
    this.shut(true);
  }

  destroy(): void {
    this.shut(true);
  }

  /** The tab is gone (its lock was released): close as a lost network connection. */
  lost(): void {
    this.shut(false);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const bytes of held) {
      if (this.closed || this.paused) {
        this.held.push(bytes);
        continue;
      }
      this.deliver(bytes);
    }
  }

  protected receive(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.paused) this.held.push(bytes);
    else this.deliver(bytes);
  }

  private deliver(bytes: Uint8Array): void {
    this.consumed(bytes.length);
    this.events?.received(bytes);
  }

  protected drain(): void {
    const held = this.held;
    this.held = [];
    for (const bytes of held) this.events?.received(bytes);
  }

  protected closeEvents(): void {
    const events = this.events;
    this.events = null;
    this.held = [];
    this.onClosed?.();
    events?.closed();
  }
}

/** The tab's end: a client's ClientLink. */
export class PortLink extends PortEnd implements ClientLink {
  private events: ClientLinkEvents | null = null;
  private early: Uint8Array[] = [];

  get bufferedAmount(): number {
    return this.unacknowledged;
  }

  attach(events: ClientLinkEvents): void {
    this.events = events;
    const early = this.early;
    this.early = [];
    for (const bytes of early) this.receive(bytes);
  }

  send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.post(bytes);
  }

  close(): void {
    this.shut(true);
  }

  protected drain(): void {
    // Bytes that arrived before attach() are delivered by attach().
  }

  protected receive(bytes: Uint8Array): void {
    if (this.closed) return;
    if (!this.events) {
      this.early.push(bytes);
      return;
    }
    this.consumed(bytes.length);
    this.events.data(bytes);
  }

  protected closeEvents(): void {
    const events = this.events;
    this.events = null;
    events?.close();
  }
}
