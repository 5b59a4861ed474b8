// Whether a WebSocket endpoint answers, asked without a line on the page's console. Chromium logs
// every WebSocket that fails to connect ("… failed: net::ERR_CONNECTION_REFUSED") on the console of
// the context that opened it, and no page API can stop it — so a link retrying against a server that
// is away would write one error per attempt. A SharedWorker has a console of its own (devtools:
// chrome://inspect/#workers): the attempt is made there, and the page hears yes or no.

/** The probe worker: per request, opens a WebSocket (subprotocol mqtt), answers whether it opened, closes it. */
const PROBE_WORKER = `onconnect = (event) => {
  event.ports[0].onmessage = ({ data, ports }) => {
    const reply = ports[0];
    let ws = null;
    let answered = false;
    const answer = (open) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      reply.postMessage(open);
      reply.close();
      try { ws && ws.close(); } catch {}
    };
    const timer = setTimeout(() => answer(false), data.timeoutMs);
    try {
      ws = new WebSocket(data.url, ['mqtt']);
    } catch {
      answer(false);
      return;
    }
    ws.onopen = () => answer(true);
    ws.onerror = () => answer(false);
    ws.onclose = () => answer(false);
  };
};`;

let worker: SharedWorker | null | undefined;

/** This page's probe worker; null where there can be none (no SharedWorker, as in a worker; or a policy forbids blob: workers). */
function probeWorker(): SharedWorker | null {
  if (worker !== undefined) return worker;
  worker = null;
  if (typeof SharedWorker !== 'function' || typeof Blob !== 'function' || typeof URL.createObjectURL !== 'function') return null;
  try {
    // A blob: URL is unique to this page, so the worker is too: tabs do not share their probes.
    const w = new SharedWorker(URL.createObjectURL(new Blob([PROBE_WORKER], { type: 'text/javascript' })), { name: 'arbormq:probe' });
    w.onerror = () => {
      if (worker === w) worker = null;
    };
    w.port.start();
    worker = w;
  } catch {
    worker = null;
  }
  return worker;
}

/**
 * Whether a WebSocket to `url` opens (within `timeoutMs`), found out quietly; undefined when this
 * page cannot ask quietly — then the caller just tries.
 */
export function probeWebSocket(url: string, timeoutMs = 10_000): Promise<boolean | undefined> {
  const w = probeWorker();
  if (!w) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    // Should the worker die unheard, the answer is "don't know" rather than never.
    const timer = setTimeout(() => resolve(undefined), timeoutMs + 1000);
    channel.port1.onmessage = (event: MessageEvent<boolean>) => {
      clearTimeout(timer);
      channel.port1.close();
      resolve(event.data);
    };
    w.port.postMessage({ url, timeoutMs }, [channel.port2]);
  });
}
