// The page's clients by identifier. Persistent clients are remembered in localStorage, so that
// after a reload their cards come back (offline) — those whose session the broker kept in
// IndexedDB — and reconnecting resumes it.
import type { BrowserBroker } from '../../host/browser/index.js';
import { PlaygroundClient, type ClientSpec } from './client-model.js';

const STORAGE_KEY = 'arbormq-playground:clients';

export class ClientRegistry {
  private readonly clients = new Map<string, PlaygroundClient>();
  private readonly added = new Set<(client: PlaygroundClient, restored: boolean) => void>();
  private readonly removed = new Set<(client: PlaygroundClient) => void>();
  private counter = 0;

  /**
   * Whether this page's clients are remembered: not when its broker runs on a memory store (another
   * tab owns the database), whose sessions end with the page — nor may it overwrite that tab's list.
   */
  private readonly remember: boolean;

  constructor(private readonly broker: BrowserBroker) {
    this.remember = broker.storage === 'indexeddb';
  }

  onAdded(listener: (client: PlaygroundClient, restored: boolean) => void): void {
    this.added.add(listener);
  }

  onRemoved(listener: (client: PlaygroundClient) => void): void {
    this.removed.add(listener);
  }

  get(clientId: string): PlaygroundClient | undefined {
    return this.clients.get(clientId);
  }

  all(): PlaygroundClient[] {
    return [...this.clients.values()];
  }

  /** An identifier no card uses yet: client-1, client-2, … */
  suggestId(): string {
    let id: string;
    do id = `client-${++this.counter}`;
    while (this.clients.has(id));
    return id;
  }

  /** Adds a card for `spec` and connects it; refuses an identifier that already has a card. */
  async add(spec: ClientSpec): Promise<PlaygroundClient> {
    if (this.clients.has(spec.clientId)) throw new Error(`"${spec.clientId}" already has a card: reconnect or remove it`);
    const client = this.insert(spec, false);
    await client.connect();
    return client;
  }

  /** Ends the client's connection (DISCONNECT: no will) and drops its card; a persistent session stays with the broker. */
  async remove(clientId: string): Promise<void> {
    const client = this.clients.get(clientId);
    if (!client) return;
    this.clients.delete(clientId);
    this.save();
    for (const listener of this.removed) listener(client);
    await client.disconnect();
  }

  /** Cards, not connected, for the persistent clients of the previous visit whose sessions the broker still holds. */
  async restore(): Promise<void> {
    if (!this.remember) return;
    const remembered = load();
    if (remembered.length === 0) return;
    const { sessions } = await this.broker.inspect({ handles: 0, previewBytes: 0 });
    const kept = new Set(sessions.map((s) => s.clientId));
    for (const spec of remembered) {
      if (this.clients.has(spec.clientId) || !kept.has(spec.clientId)) continue;
      void this.insert(spec, true).refreshSubscriptions();
    }
  }

  private insert(spec: ClientSpec, restored: boolean): PlaygroundClient {
    const client = new PlaygroundClient(this.broker, spec);
    this.clients.set(spec.clientId, client);
    this.save();
    for (const listener of this.added) listener(client, restored);
    return client;
  }

  private save(): void {
    if (!this.remember) return;
    const persistent = this.all()
      .filter((c) => !c.spec.clean)
      .map((c) => c.spec);
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(persistent));
    } catch {
      // Storage full or denied (private mode): the cards just will not come back after a reload.
    }
  }
}

function load(): ClientSpec[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter(isSpec) : [];
  } catch {
    return [];
  }
}

function isSpec(x: unknown): x is ClientSpec {
  const s = x as ClientSpec;
  return typeof s === 'object' && s !== null && typeof s.clientId === 'string' && (s.protocolVersion === 4 || s.protocolVersion === 5) && typeof s.clean === 'boolean';
}

/** Forgets the remembered clients (the playground's reset). */
export function forgetClients(): void {
  localStorage.removeItem(STORAGE_KEY);
}
