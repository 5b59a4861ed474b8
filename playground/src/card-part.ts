// What each part of a client card offers the card: its element, and how it follows the client.
import type { ClientEvent } from './client-model.js';

export interface CardPart {
  readonly element: HTMLElement;
  /** Follows the client's events (messages, packets, subscriptions …). */
  onEvent?(event: ClientEvent): void;
  /** The client connected (true) or went offline (false): actions that need a connection follow. */
  setOnline?(online: boolean): void;
}

/** How a part reports the outcome of an action in the card's status line. */
export type ShowNote = (text: string, error: boolean) => void;

/** Enables or disables the submit buttons of `form` (an offline client can do nothing with them). */
export function enableSubmit(form: HTMLFormElement, enabled: boolean): void {
  for (const button of Array.from(form.querySelectorAll<HTMLButtonElement>('button[type=submit]'))) button.disabled = !enabled;
}
