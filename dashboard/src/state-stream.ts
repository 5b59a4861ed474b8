// The admin API's event stream (`GET /api/v1/events`), read with fetch because EventSource cannot
// send the bearer token. Each `state` event is handed on; when the stream ends (the server went
// away, restarted) it is opened again after a pause.
import type { DashboardState } from '../../host/node/admin-api.js';

export type LinkState = 'connecting' | 'live' | 'reconnecting' | 'unauthorized';

const RETRY_MS = 1000;

/** Follows the state until the returned function is called (or the token is refused). */
export function followState(token: string, onState: (state: DashboardState) => void, onLink: (state: LinkState, detail?: string) => void): () => void {
  let aborter: AbortController | null = null;
  let stopped = false;
  let retry: ReturnType<typeof setTimeout> | null = null;

  const open = async (): Promise<void> => {
    aborter = new AbortController();
    try {
      const res = await fetch('/api/v1/events', { headers: { Authorization: `Bearer ${token}` }, signal: aborter.signal, cache: 'no-store' });
      if (res.status === 401) {
        stopped = true;
        onLink('unauthorized');
        return;
      }
      if (!res.ok || !res.body) throw new Error(`the server answered ${res.status}`);
      onLink('live');
      await readEvents(res.body, onState);
      throw new Error('the server closed the stream');
    } catch (error) {
      if (stopped) return;
      onLink('reconnecting', (error as Error)?.message);
      retry = setTimeout(() => void open(), RETRY_MS);
    }
  };
  onLink('connecting');
  void open();
  return () => {
    stopped = true;
    if (retry !== null) clearTimeout(retry);
    aborter?.abort();
  };
}

/** Splits a text/event-stream into events and hands on the data of each `state` event. */
async function readEvents(body: ReadableStream<Uint8Array>, onState: (state: DashboardState) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const fields = new Map(event.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trimStart()]));
      if (fields.get('event') === 'state' && fields.has('data')) onState(JSON.parse(fields.get('data')!) as DashboardState);
    }
  }
}
