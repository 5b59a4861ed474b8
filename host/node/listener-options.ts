import type { AddressInfo } from 'node:net';

/** Where a listener binds. */
export interface BindOptions {
  /** 0 = a free port the OS chooses. */
  port: number;
  /** Default 0.0.0.0. */
  host?: string;
}

/** Certificate files of a TLS listener (paths; read at start). */
export interface TlsFileOptions {
  /** PEM certificate chain, server certificate first. */
  certFile: string;
  /** PEM private key of the certificate. */
  keyFile: string;
  /** PEM CA certificates that client certificates must chain to. */
  caFile?: string;
  /** Refuse clients without a valid certificate signed by `caFile` (mutual TLS). */
  requireCertificate?: boolean;
  /** The client certificate's subject common name (CN) becomes the client's user name; no password is checked. */
  useIdentityAsUsername?: boolean;
}

/** MQTT over TCP (default port 1883). `protocol` may be left out. */
export interface TcpListenerOptions extends BindOptions {
  protocol?: 'mqtt';
}

/** MQTT over TLS (default port 8883). */
export interface TlsListenerOptions extends BindOptions, TlsFileOptions {
  protocol: 'mqtts';
}

/** MQTT over WebSocket; MQTT.js connects with `ws://host:port/mqtt`. */
export interface WebSocketListenerOptions extends BindOptions {
  protocol: 'ws';
  /** URL path of the endpoint (default "/mqtt"). */
  path?: string;
}

/** MQTT over secure WebSocket (`wss://host:port/mqtt`). */
export interface SecureWebSocketListenerOptions extends BindOptions, TlsFileOptions {
  protocol: 'wss';
  path?: string;
}

export type ListenerOptions = TcpListenerOptions | TlsListenerOptions | WebSocketListenerOptions | SecureWebSocketListenerOptions;
export type ListenerProtocol = NonNullable<ListenerOptions['protocol']>;

/** The HTTP endpoint for `/metrics` (Prometheus) and `/health`; with an admin token, the admin API and the dashboard. */
export interface HttpListenerOptions extends BindOptions {
  /**
   * A file holding the admin API's bearer token (at least 16 characters). Turns on `/api/v1/…` and
   * `/dashboard`, makes `/metrics` ask for the token too, and makes the endpoint bind 127.0.0.1
   * unless `host` says otherwise.
   */
  adminTokenFile?: string;
  /** Where the dashboard's built files are (default: dist/dashboard/ of the arbormq package). */
  dashboardDir?: string;
}

/** A listener that is accepting connections. */
export interface RunningListener {
  readonly protocol: ListenerProtocol | 'http';
  address(): AddressInfo;
  /** Stops accepting; connections already open are left to the broker. Resolves once they are all gone. */
  close(): Promise<void>;
  /**
   * TLS listeners: reads the certificate and key files again; the function it resolves with makes new
   * handshakes use them (connections already open keep theirs).
   */
  prepareCertificateReload?(): Promise<() => void>;
}

export const DEFAULT_WEBSOCKET_PATH = '/mqtt';
