// The SharedWorker that hosts one broker for every tab of an origin (one per database name).
// Built as dist/browser/arbormq-worker.js; tabs reach it through SharedBroker (shared-broker.ts).
import type { BridgeHandle } from './api.js';
import { LocalBroker } from './local-broker.js';
import { tabLockName, type TabToWorker, type WorkerCalls, type WorkerMethod, type WorkerToTab } from './port-protocol.js';
import { PortTransport } from './port-transport.js';

/** The part of SharedWorkerGlobalScope used here (lib "DOM" does not describe worker scopes). */
declare const self: { onconnect: ((event: MessageEvent) => void) | null; navigator: Navigator };

/** One connected tab: its control port, its client connections, its bridge-status subscriptions. */
interface Tab {
  id: string;
  control: MessagePort;
  connections: Set<PortTransport>;
  watching: Map<string, () => void>;
}

let broker: Promise<LocalBroker> | null = null;
const tabs = new Set<Tab>();
let connectionCount = 0;

self.onconnect = (event: MessageEvent) => {
  const control = event.ports[0]!;
  const tab: Tab = { id: '', control, connections: new Set(), watching: new Map() };
  tabs.add(tab);
  control.onmessage = (message: MessageEvent<TabToWorker>) => void handle(tab, message.data);
  control.start();
};

function send(tab: Tab, message: WorkerToTab): void {
  tab.control.postMessage(message);
}

async function handle(tab: Tab, message: TabToWorker): Promise<void> {
  switch (message.op) {
    case 'hello': {
      tab.id = message.tab;
      watchTab(tab);
      // The first tab's options start the broker; later tabs join it as it is.
      broker ??= LocalBroker.start({ ...message.options, mode: 'shared-worker' });
      try {
        const b = await broker;
        send(tab, { op: 'ready', mode: b.mode, storage: b.storage, storageNote: b.storageNote });
      } catch (error) {
        broker = null;
        send(tab, { op: 'failed', error: (error as Error)?.message ?? String(error) });
      }
      break;
    }
    case 'connect': {
      const transport: PortTransport = new PortTransport(message.port, `tab:${tab.id.slice(0, 8)}#${++connectionCount}`, () => tab.connections.delete(transport));
      tab.connections.add(transport);
      try {
        if (!broker) throw new Error('no broker');
        (await broker).accept(transport);
      } catch {
        // The broker did not start (the tab was told): the connection closes at once.
        transport.destroy();
      }
      break;
    }
    case 'call': {
      try {
        const value = await call(tab, message.method, message.args);
        send(tab, { op: 'result', id: message.id, value });
      } catch (error) {
        const e = error as Error;
        send(tab, { op: 'result', id: message.id, error: { name: e?.name ?? 'Error', message: e?.message ?? String(error) } });
      }
      break;
    }
    case 'bye':
      dropTab(tab, false);
      break;
  }
}

async function call<M extends WorkerMethod>(tab: Tab, method: M, args: unknown[]): Promise<WorkerCalls[M]['result']> {
  if (!broker) throw new Error('the broker is not running');
  const b = await broker;
  const bridge = (clientId: unknown): Promise<BridgeHandle> => b.bridgeById(String(clientId));
  switch (method) {
    case 'stats':
      return (await b.stats()) as WorkerCalls[M]['result'];
    case 'inspect':
      return (await b.inspect(args[0] as WorkerCalls['inspect']['args'][0])) as WorkerCalls[M]['result'];
    case 'bridge': {
      const handle = await b.bridge(args[0] as WorkerCalls['bridge']['args'][0]);
      // A changed config replaces the bridge: watch the one running now.
      tab.watching.get(handle.clientId)?.();
      tab.watching.set(
        handle.clientId,
        handle.onStatus((status) => send(tab, { op: 'bridge-status', clientId: handle.clientId, status })),
      );
      return handle.status as WorkerCalls[M]['result'];
    }
    case 'bridge.setOnline':
      return (await (await bridge(args[0])).setOnline(Boolean(args[1]))) as WorkerCalls[M]['result'];
    case 'bridge.queued':
      return (await (await bridge(args[0])).queued()) as WorkerCalls[M]['result'];
    case 'bridge.close':
      return (await (await bridge(args[0])).close()) as WorkerCalls[M]['result'];
    default:
      throw new Error(`unknown call ${String(method)}`);
  }
}

/**
 * A tab holds a Web Lock named after it for as long as it lives: the worker asks for the same lock
 * and is granted it when the tab is gone (closed, reloaded, crashed) — the only reliable way to
 * learn it, since a MessagePort never reports its other side's death.
 */
function watchTab(tab: Tab): void {
  const locks = self.navigator.locks;
  if (!locks) return;
  void locks.request(tabLockName(tab.id), async () => dropTab(tab, true)).catch(() => undefined);
}

/** The tab is gone (`lost`) or closed its handle: its connections close, its subscriptions to bridge status end. */
function dropTab(tab: Tab, lost: boolean): void {
  if (!tabs.delete(tab)) return;
  for (const transport of [...tab.connections]) {
    if (lost) transport.lost();
    else transport.destroy();
  }
  tab.connections.clear();
  for (const stop of tab.watching.values()) stop();
  tab.watching.clear();
  tab.control.close();
}
