// The dashboard the Node server serves at /dashboard/: the connections (with a button to disconnect
// each), the bridges, and the playground's inspector views of the broker's insides — all fed by the
// admin API's event stream. `<html data-state>` says loading / ready (the first state arrived) /
// login (a token is needed).
import type { DashboardState } from '../../host/node/admin-api.js';
import { drawIfChanged, fill, h } from '../../playground/src/dom.js';
import { Inspector } from '../../playground/src/inspector.js';
import { renderBridges } from './bridges-view.js';
import { renderConnections } from './connections-view.js';
import { followState, type LinkState } from './state-stream.js';

/** Where the token is kept: this tab only. */
const TOKEN_KEY = 'arbormq-admin-token';

const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
};

function showNotice(text: string | null): void {
  const notice = byId('notice');
  notice.textContent = text ?? '';
  notice.hidden = text === null;
}

/** The token: from `#token=…` (then taken out of the address bar), else from this tab's storage. */
function takeToken(): string | null {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]!));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function askForToken(problem: string | null): void {
  document.documentElement.dataset.state = 'login';
  byId('dashboard').hidden = true;
  const form = byId<HTMLFormElement>('token-form');
  form.hidden = false;
  showNotice(problem);
  byId<HTMLInputElement>('token').focus();
}

const LINK_TEXT: Record<LinkState, string> = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  unauthorized: 'token refused',
};

function start(token: string): void {
  byId('token-form').hidden = true;
  byId('dashboard').hidden = false;
  const inspector = new Inspector();
  fill(byId('inspector'), inspector.element);

  const disconnect = (clientId: string): void => {
    fetch(`/api/v1/clients/${encodeURIComponent(clientId)}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } })
      .then(async (res) => {
        if (!res.ok) throw new Error(((await res.json()) as { error?: { message?: string } }).error?.message ?? `the server answered ${res.status}`);
        showNotice(null);
      })
      .catch((error: Error) => showNotice(`Could not disconnect ${clientId}: ${error.message}`));
  };

  const render = (state: DashboardState): void => {
    const s = state.stats;
    fill(byId('server-info'), `ArborMQ ${s.version} · up ${uptime(s.uptimeSeconds)} · ${s.clientsConnected} client${s.clientsConnected === 1 ? '' : 's'} connected`);
    drawIfChanged(byId('connection-list'), state.clients, () => renderConnections(state.clients, disconnect));
    drawIfChanged(byId('bridge-list'), s.bridges, () => renderBridges(s.bridges));
    inspector.render(s, state.snapshot);
    document.documentElement.dataset.state = 'ready';
  };

  followState(token, render, (link, detail) => {
    fill(byId('link-status'), h('span', { class: `state state-${link === 'live' ? 'online' : link === 'unauthorized' ? 'offline' : 'connecting'}` }, LINK_TEXT[link]), detail ? ` ${detail}` : '');
    if (link === 'unauthorized') {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken('The server refused this token.');
    }
  });
}

function uptime(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h`;
}

byId<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = byId<HTMLInputElement>('token').value.trim();
  if (token.length === 0) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  showNotice(null);
  start(token);
});

const token = takeToken();
if (token) start(token);
else askForToken(null);
