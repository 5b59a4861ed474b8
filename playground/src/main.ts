// The playground page: starts the broker in this tab, then the client list, the inspector, the
// bridge demo and the guided examples. `<html data-state>` says loading / ready / failed.
import { createBroker, type BrowserBroker } from '../../host/browser/index.js';
import { BridgeDemo, forgetBridge } from './bridge-demo.js';
import { clientCard } from './client-card.js';
import { clientForm } from './client-form.js';
import { ClientRegistry, forgetClients } from './clients.js';
import { loadRemoteBroker } from './config.js';
import { fill, h } from './dom.js';
import { examplesView } from './examples.js';
import { Inspector, watchBroker } from './inspector.js';

/** The IndexedDB database (and so the broker's state) of the playground, apart from any app's. */
const DB_NAME = 'arbormq-playground';

const byId = (id: string): HTMLElement => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
};

function showNotice(text: string): void {
  const notice = byId('notice');
  notice.textContent = text;
  notice.hidden = false;
}

async function main(): Promise<void> {
  const [remote, broker] = await Promise.all([
    loadRemoteBroker(),
    // In this tab rather than a SharedWorker: the inspector reads the broker directly, and the
    // page's state is its own. 'relaxed': an IndexedDB commit survives a reload, which is what the
    // offline demo needs, without waiting for the disk on every message.
    createBroker({ mode: 'tab', name: DB_NAME, durability: 'relaxed' }),
  ]);
  describeBroker(broker);

  const registry = new ClientRegistry(broker);
  const cards = byId('client-cards');
  const detachers = new Map<string, { element: HTMLElement; detach(): void }>();
  const empty = h('p', { class: 'empty' }, 'No clients yet: create one above, or run a guided example.');
  cards.append(empty);
  registry.onAdded((client, restored) => {
    const card = clientCard(client, registry, restored);
    detachers.set(client.id, card);
    cards.append(card.element);
    empty.hidden = true;
  });
  registry.onRemoved((client) => {
    const card = detachers.get(client.id);
    detachers.delete(client.id);
    card?.detach();
    card?.element.remove();
    empty.hidden = detachers.size > 0;
  });
  fill(byId('client-form'), clientForm(registry));
  await registry.restore();

  const inspector = new Inspector();
  fill(byId('inspector'), inspector.element);
  const stopInspector = watchBroker(broker, inspector);

  const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)');
  const reveal = (clientId: string): void => detachers.get(clientId)?.element.scrollIntoView({ block: 'start', behavior: reducedMotion.matches ? 'auto' : 'smooth' });
  fill(byId('example-list'), examplesView(registry, reveal));

  const bridge = new BridgeDemo(broker, remote);
  fill(byId('bridge-demo'), bridge.element);
  try {
    await bridge.start();
  } catch (error) {
    fill(bridge.element, h('p', { class: 'error' }, `The bridge demo could not start: ${(error as Error).message}`));
  }

  const reset = byId('reset') as HTMLButtonElement;
  reset.disabled = false;
  reset.addEventListener('click', () => {
    reset.disabled = true;
    void resetPlayground(broker, stopInspector, bridge, registry).catch((error: Error) => {
      showNotice(`Reset failed: ${error.message}`);
      reset.disabled = false;
    });
  });

  document.documentElement.dataset.state = 'ready';
}

function describeBroker(broker: BrowserBroker): void {
  const storage = broker.storage === 'indexeddb' ? `state in IndexedDB (“${DB_NAME}”)` : 'state in memory';
  fill(byId('broker-status'), h('span', { class: 'state state-online' }, 'running'), ` in this tab · ${storage}`);
  if (broker.storageNote) showNotice(`${broker.storageNote}.`);
}

/** Forgets everything: the broker's database, the remembered clients and the bridge's identity; then reloads. */
async function resetPlayground(broker: BrowserBroker, stopInspector: () => void, bridge: BridgeDemo, registry: ClientRegistry): Promise<void> {
  stopInspector();
  await Promise.allSettled(registry.all().map((c) => registry.remove(c.id)));
  await bridge.close();
  await broker.close();
  forgetClients();
  forgetBridge();
  await new Promise<void>((resolve, reject) => {
    const request = indexedDB.deleteDatabase(DB_NAME);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error ?? new Error('could not delete the database'));
    request.onblocked = () => reject(new Error('another tab has the playground open: close it first'));
  });
  location.reload();
}

main().catch((error: unknown) => {
  document.documentElement.dataset.state = 'failed';
  byId('broker-status').textContent = 'The broker did not start.';
  showNotice(`The playground could not start: ${(error as Error)?.message ?? String(error)}`);
});
