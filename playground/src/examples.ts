// Guided examples: each sets up its clients, subscriptions and messages in one click, through the
// same client cards a user would use, so every step shows in the logs, the packets and the broker's
// insides. An example's clients replace the previous example's, so the page holds one at a time.
import type { ClientSpec, PlaygroundClient } from './client-model.js';
import type { ClientRegistry } from './clients.js';
import { h } from './dom.js';

/** A fresh card for `clientId` (an older card of that name is removed first), connected. */
export type StartClient = (clientId: string, overrides?: Partial<ClientSpec>) => Promise<PlaygroundClient>;

export interface Example {
  id: string;
  title: string;
  /** One sentence: what the example shows. */
  explanation: string;
  run(fresh: StartClient): Promise<string>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const EXAMPLES: Example[] = [
  {
    id: 'retained',
    title: 'Retained messages',
    explanation:
      'A retained message is the last known value of a topic: the broker keeps it and hands it to every new subscriber at once — the dashboard subscribes after the thermostat published, and still gets the temperature.',
    async run(fresh) {
      const thermostat = await fresh('thermostat');
      await thermostat.publish('home/living/temperature', '21.5 °C', { qos: 1, retain: true, properties: { contentType: 'text/plain' } });
      const dashboard = await fresh('dashboard');
      await dashboard.subscribe('home/+/temperature', { qos: 1 });
      return 'The dashboard received the retained 21.5 °C (flagged "retained") the moment it subscribed; see it in the topic tree too.';
    },
  },
  {
    id: 'will',
    title: 'Will messages',
    explanation:
      'A will is the message a client leaves with the broker for when it vanishes without a goodbye: device-7’s connection is dropped (no DISCONNECT), so the broker publishes its will and the monitor learns it is offline.',
    async run(fresh) {
      const monitor = await fresh('monitor');
      await monitor.subscribe('devices/+/status', { qos: 1 });
      const device = await fresh('device-7', { will: { topic: 'devices/device-7/status', payload: 'offline (will)', qos: 1, retain: true, delaySeconds: 0 } });
      await device.publish('devices/device-7/status', 'online', { qos: 1, retain: true });
      // A moment for the reader to see "online" before the connection goes.
      await sleep(600);
      device.drop();
      return 'device-7 was dropped and the monitor received its will, "offline (will)". "Disconnect" instead of "Drop connection" would have discarded it.';
    },
  },
  {
    id: 'shared',
    title: 'Shared subscriptions',
    explanation:
      'Members of a shared subscription ($share/group/filter) split its messages between them: the broker hands each job to one worker of the group, taking turns, instead of to all.',
    async run(fresh) {
      for (const id of ['worker-a', 'worker-b']) {
        const worker = await fresh(id);
        await worker.subscribe('$share/workers/jobs/#', { qos: 1 });
      }
      const dispatcher = await fresh('dispatcher');
      for (let i = 1; i <= 6; i++) await dispatcher.publish(`jobs/${i}`, `job ${i}`, { qos: 1 });
      return 'Six jobs went out; worker-a and worker-b received three each.';
    },
  },
  {
    id: 'request-response',
    title: 'Request / response',
    explanation:
      'MQTT 5.0 requests carry a response topic and correlation data: the service answers on that topic with the same correlation data, so the requester can tell which question an answer belongs to.',
    async run(fresh) {
      const service = await fresh('time-service');
      service.setResponder(true);
      await service.subscribe('service/time', { qos: 1 });
      const requester = await fresh('requester');
      await requester.subscribe('replies/requester', { qos: 1 });
      await requester.publish('service/time', 'what time is it?', {
        qos: 1,
        properties: { responseTopic: 'replies/requester', correlationData: new TextEncoder().encode('request-42') },
      });
      return 'The requester received the answer on replies/requester with correlation data request-42.';
    },
  },
];

/**
 * The examples as cards with a button each; `status` tells how the last run went. A run first removes
 * the previous example's clients, and `reveal` brings its first new card into view.
 */
export function examplesView(registry: ClientRegistry, reveal: (clientId: string) => void): HTMLElement {
  const status = h('p', { class: 'example-status', role: 'status' });
  const grid = h('div', { class: 'example-grid' });
  // One example at a time (they share client names); buttons stay enabled so keyboard focus stays put.
  let running = false;
  let previous: string[] = [];
  const run = async (example: Example): Promise<string> => {
    await Promise.all(previous.map((id) => registry.remove(id)));
    const started: string[] = (previous = []);
    return example.run(async (clientId, overrides = {}) => {
      await registry.remove(clientId);
      started.push(clientId);
      const client = await registry.add({ clientId, protocolVersion: 5, clean: true, sessionExpiryInterval: 0, will: null, ...overrides });
      if (started.length === 1) reveal(clientId);
      if (client.state !== 'online') throw new Error(`${clientId} could not connect`);
      return client;
    });
  };
  for (const example of EXAMPLES) {
    const textId = `example-${example.id}-text`;
    const button = h('button', { type: 'button', class: 'button-primary', 'aria-describedby': textId, 'data-example': example.id }, `Run: ${example.title}`);
    button.addEventListener('click', () => {
      if (running) return;
      running = true;
      grid.setAttribute('aria-busy', 'true');
      status.textContent = `Running "${example.title}"…`;
      run(example)
        .then(
          (outcome) => (status.textContent = outcome),
          (error: Error) => (status.textContent = `"${example.title}" did not finish: ${error.message}`),
        )
        .finally(() => {
          running = false;
          grid.removeAttribute('aria-busy');
        });
    });
    grid.append(h('article', { class: 'example' }, h('h3', {}, example.title), h('p', { id: textId }, example.explanation), button));
  }
  return h('div', {}, grid, status);
}
