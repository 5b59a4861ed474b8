// The offline-first demo: a bridge from the in-tab broker to the Node ArborMQ over WebSocket, a
// network switch, a publisher in the tab, and — on the remote side — a client connected straight to
// the Node broker that shows what arrives there. Messages published while the switch is off wait in
// the bridge's session, in IndexedDB: they survive a reload and cross when the switch is on again.
import { connectWebSocket, type BridgeHandle, type BridgeStatus, type BrowserBroker, type MqttClient, type ReceivedMessage } from '../../host/browser/index.js';
import { probeWebSocket } from '../../host/browser/quiet-probe.js';
import type { RemoteBroker } from './config.js';
import { fill, followingLog, h, inputField, type FollowingLog } from './dom.js';
import { clock, payloadText, topicNameProblem } from './format.js';

/** Local topics under this prefix go to the remote broker; remote ones under INBOUND come in. */
export const OUTBOUND = 'outbox/';
export const INBOUND = 'inbox/';
const BRIDGE_ID_KEY = 'arbormq-playground:bridge-id';
const ONLINE_KEY = 'arbormq-playground:bridge-online';
const QUEUE_POLL_MS = 500;
const REMOTE_RETRY_MS = 2000;
const LOG_LIMIT = 100;

const STATE_TEXT: Record<BridgeStatus['state'], string> = {
  connecting: 'connecting',
  online: 'online',
  waiting: 'waiting to retry',
  offline: 'offline (switched off)',
  standby: 'standby (another tab owns the database)',
  stopped: 'stopped',
};

export class BridgeDemo {
  readonly element = h('div', { class: 'bridge-demo' });
  private bridge: BridgeHandle | null = null;
  private local: MqttClient | null = null;
  private remote: MqttClient | null = null;
  private closing = false;
  private queueTimer: ReturnType<typeof setInterval> | null = null;
  private remoteTimer: ReturnType<typeof setTimeout> | null = null;
  /** Retries of the remote client since it was last connected. */
  private remoteRetries = 0;
  private counter = 0;

  private readonly linkState = h('span', { class: 'state' }, 'starting');
  private readonly queued = h('strong', { 'data-queued': '' }, '0');
  private readonly linkError = h('span', { class: 'link-error' });
  /** The switch's visible on / off; assistive technology reads aria-checked instead. */
  private readonly toggleText = h('span', { class: 'switch-state', 'aria-hidden': 'true' }, 'on');
  private readonly toggle = h(
    'button',
    { type: 'button', role: 'switch', 'aria-checked': 'true', class: 'switch', disabled: true },
    h('span', { class: 'switch-track', 'aria-hidden': 'true' }),
    'Bridge network ',
    this.toggleText,
  );
  private readonly localLog = h('ol', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Arrived in the tab from the remote broker', tabindex: 0 });
  private readonly localEntries = followingLog(this.localLog, LOG_LIMIT);
  private readonly remoteState = h('span', { class: 'state' }, 'connecting');
  private readonly remoteLog = h('ol', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Received by the remote client', tabindex: 0 });
  private readonly remoteEntries = followingLog(this.remoteLog, LOG_LIMIT);
  private readonly note = h('p', { class: 'card-note', role: 'status' });

  constructor(
    private readonly broker: BrowserBroker,
    private readonly remoteBroker: RemoteBroker | null,
  ) {}

  async start(): Promise<void> {
    if (!this.remoteBroker) {
      fill(
        this.element,
        h('p', {}, 'The bridge demo needs the Node ArborMQ that ', h('code', {}, 'npm run playground'), ' starts next to the page; this page was served without it (no /config.json).'),
      );
      return;
    }
    this.render(this.remoteBroker);
    // The tab's client of the demo: publishes under outbox/ and shows what arrives under inbox/.
    this.local = await this.broker.connect({ clientId: 'bridge-demo', onMessage: (m) => this.logTo(this.localEntries, m) });
    await this.local.subscribe(`${INBOUND}#`, { qos: 1 });
    this.connectRemote(this.remoteBroker.wsUrl);
    const online = localStorage.getItem(ONLINE_KEY) !== 'false';
    this.bridge = await this.broker.bridge({
      url: this.remoteBroker.wsUrl,
      clientId: bridgeId(),
      topics: [
        { filter: `${OUTBOUND}#`, direction: 'out', qos: 1 },
        { filter: `${INBOUND}#`, direction: 'in', qos: 1 },
      ],
      online,
      backoff: { initialMs: 500, maxMs: 5000 },
    });
    this.bridge.onStatus((s) => this.showStatus(s));
    this.showStatus(this.bridge.status);
    this.toggle.disabled = false;
    this.queueTimer = setInterval(() => void this.refreshQueue(), QUEUE_POLL_MS);
    await this.refreshQueue();
  }

  /** Stops the demo's connections and the bridge (its queue stays in IndexedDB). */
  async close(): Promise<void> {
    this.closing = true;
    if (this.queueTimer !== null) clearInterval(this.queueTimer);
    if (this.remoteTimer !== null) clearTimeout(this.remoteTimer);
    await Promise.allSettled([this.remote?.end(), this.local?.end(), this.bridge?.close()]);
  }

  private render(remote: RemoteBroker): void {
    const localTopic = inputField(`Topic (under ${OUTBOUND})`, { value: 'sensors/kitchen', name: 'bridgeTopic' });
    const localPayload = inputField('Payload', { value: '', placeholder: 'reading 1', name: 'bridgePayload' });
    const remoteTopic = inputField(`Topic (under ${INBOUND})`, { value: 'commands/lights', name: 'remoteTopic' });
    const remotePayload = inputField('Payload', { value: 'on', name: 'remotePayload' });
    this.toggle.addEventListener('click', () => void this.switchNetwork());

    const localForm = h(
      'form',
      {
        'aria-label': 'Publish in the tab',
        on: {
          submit: (event) => {
            event.preventDefault();
            const topic = OUTBOUND + localTopic.input.value.trim();
            const payload = localPayload.input.value || `reading ${++this.counter}`;
            void this.publishLocally(topic, payload);
          },
        },
      },
      h('div', { class: 'form-row' }, localTopic.field, localPayload.field),
      h('button', { type: 'submit', class: 'button-primary' }, 'Publish in the tab (QoS 1)'),
    );
    const remoteForm = h(
      'form',
      {
        'aria-label': 'Publish on the remote broker',
        on: {
          submit: (event) => {
            event.preventDefault();
            void this.publishRemotely(INBOUND + remoteTopic.input.value.trim(), remotePayload.input.value);
          },
        },
      },
      h('div', { class: 'form-row' }, remoteTopic.field, remotePayload.field),
      h('button', { type: 'submit' }, 'Publish on the remote broker'),
    );

    fill(
      this.element,
      h(
        'p',
        { class: 'hint' },
        `The bridge carries ${OUTBOUND}# from this tab to the Node broker and ${INBOUND}# back. Switch its network off, publish, reload the page: the messages wait in the bridge's session in IndexedDB and arrive, in order, once the network is back on.`,
      ),
      h(
        'div',
        { class: 'bridge-grid' },
        h(
          'section',
          { class: 'bridge-side', 'aria-labelledby': 'bridge-local-title' },
          h('h3', { id: 'bridge-local-title' }, 'This tab'),
          h('p', { class: 'bridge-status', role: 'status' }, 'Link ', this.linkState, ' · ', this.queued, ' queued in IndexedDB', this.linkError),
          h('div', { class: 'form-row' }, this.toggle, h('button', { type: 'button', class: 'button-quiet', on: { click: () => location.reload() } }, 'Reload the page')),
          localForm,
          this.note,
          h('h4', {}, `Arrived from the remote side (${INBOUND}#)`),
          this.localLog,
        ),
        h(
          'section',
          { class: 'bridge-side', 'aria-labelledby': 'bridge-remote-title' },
          h('h3', { id: 'bridge-remote-title' }, 'Node ArborMQ'),
          h('p', { class: 'bridge-status', role: 'status' }, h('code', {}, remote.wsUrl), ' · remote client ', this.remoteState),
          h('p', { class: 'hint' }, 'A client connected straight to the Node broker, subscribed to ', h('code', {}, `${OUTBOUND}#`), remote.mqttPort ? [' — or watch from a terminal: ', h('code', {}, `mosquitto_sub -p ${remote.mqttPort} -t '${OUTBOUND}#' -v`)] : null, '.'),
          h('h4', {}, `Received remotely (${OUTBOUND}#)`),
          this.remoteLog,
          remoteForm,
        ),
      ),
    );
  }

  private async switchNetwork(): Promise<void> {
    const bridge = this.bridge;
    if (!bridge) return;
    const online = this.toggle.getAttribute('aria-checked') !== 'true';
    this.toggle.disabled = true;
    try {
      await bridge.setOnline(online);
      localStorage.setItem(ONLINE_KEY, String(online));
    } finally {
      this.toggle.disabled = false;
      this.showStatus(bridge.status);
    }
  }

  private async publishLocally(topic: string, payload: string): Promise<void> {
    const problem = topicNameProblem(topic);
    if (problem || !this.local) {
      this.note.textContent = problem ? `Not sent: ${problem}.` : 'The tab client is not connected.';
      return;
    }
    try {
      // Resolves on the in-tab broker's PUBACK, which waits for the message to be in IndexedDB.
      await this.local.publish(topic, payload, { qos: 1 });
      this.note.textContent = `Published ${topic}: ${payload}`;
      await this.refreshQueue();
    } catch (error) {
      this.note.textContent = `Publish failed: ${(error as Error).message}`;
    }
  }

  private async publishRemotely(topic: string, payload: string): Promise<void> {
    const problem = topicNameProblem(topic);
    if (problem || !this.remote?.connected) {
      this.note.textContent = problem ? `Not sent: ${problem}.` : 'The remote client is not connected.';
      return;
    }
    try {
      await this.remote.publish(topic, payload, { qos: 1 });
    } catch (error) {
      this.note.textContent = `Remote publish failed: ${(error as Error).message}`;
    }
  }

  /**
   * The remote side's own client, straight to the Node broker's WebSocket listener; retried while the
   * page lives — each retry first asking quietly whether the broker is back (see quiet-probe.ts), so
   * a stopped server does not fill the console with one failed WebSocket every two seconds.
   */
  private connectRemote(url: string): void {
    if (this.closing) return;
    this.remoteState.textContent = 'connecting';
    this.remoteState.className = 'state state-connecting';
    const retry = (): void => {
      if (this.closing) return;
      this.remoteState.textContent = `not connected (retry ${++this.remoteRetries} in ${REMOTE_RETRY_MS / 1000} s)`;
      this.remoteState.className = 'state state-offline';
      this.remoteTimer = setTimeout(() => {
        void probeWebSocket(url).then((answers) => (answers === false ? retry() : this.connectRemote(url)));
      }, REMOTE_RETRY_MS);
    };
    connectWebSocket(url, { clientId: `playground-remote-${crypto.randomUUID().slice(0, 8)}`, keepAlive: 30, onMessage: (m) => this.logTo(this.remoteEntries, m) }).then(
      async (client) => {
        this.remote = client;
        void client.closed.then(() => {
          if (this.remote === client) this.remote = null;
          retry();
        });
        await client.subscribe(`${OUTBOUND}#`, { qos: 1 });
        this.remoteRetries = 0;
        this.remoteState.textContent = 'connected';
        this.remoteState.className = 'state state-online';
      },
      () => retry(),
    );
  }

  private showStatus(status: BridgeStatus): void {
    this.linkState.textContent = status.state === 'waiting' ? `${STATE_TEXT.waiting} (attempt ${status.attempts + 1})` : STATE_TEXT[status.state];
    this.linkState.className = `state state-${status.state === 'online' ? 'online' : status.state === 'connecting' || status.state === 'waiting' ? 'connecting' : 'offline'}`;
    this.linkState.dataset.state = status.state;
    this.linkError.textContent = status.error && status.state !== 'online' ? ` · ${status.error}` : '';
    const on = status.state !== 'offline';
    this.toggle.setAttribute('aria-checked', String(on));
    this.toggleText.textContent = on ? 'on' : 'off';
    this.toggle.disabled = status.state === 'standby' || status.state === 'stopped';
  }

  private async refreshQueue(): Promise<void> {
    if (!this.bridge || this.closing) return;
    try {
      const n = await this.bridge.queued();
      if (this.queued.textContent !== String(n)) this.queued.textContent = String(n);
    } catch {
      // The broker is closing (reset): the count stays as it was.
    }
  }

  private logTo(log: FollowingLog, m: ReceivedMessage): void {
    log.append(
      h('li', { class: 'message' }, h('time', {}, clock(Date.now())), ' ', h('code', { class: 'topic' }, m.topic), ' ', h('span', { class: 'payload' }, payloadText(m.payload)), h('span', { class: 'badge' }, `QoS ${m.qos}`)),
    );
  }
}

/** The bridge's identity on the remote broker, one per browser profile (two browsers must not take each other's session). */
function bridgeId(): string {
  let id = localStorage.getItem(BRIDGE_ID_KEY);
  if (!id) {
    id = `playground-bridge-${crypto.randomUUID().slice(0, 8)}`;
    localStorage.setItem(BRIDGE_ID_KEY, id);
  }
  return id;
}

/** Forgets the bridge's identity and switch position (the playground's reset). */
export function forgetBridge(): void {
  localStorage.removeItem(BRIDGE_ID_KEY);
  localStorage.removeItem(ONLINE_KEY);
}
