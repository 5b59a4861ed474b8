/** What the ArborMQ client speaks and hands to applications. */

export type QoS = 0 | 1 | 2;
export type ClientProtocolVersion = 4 | 5;

/** The MQTT 5.0 properties an application may put on a PUBLISH (or a will) and receive back. */
export interface PublishProperties {
  payloadFormatIndicator?: number;
  /** Seconds. */
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Uint8Array;
  userProperties?: [string, string][];
  /** Set by the broker on delivery: the identifiers of the subscriptions that matched. */
  subscriptionIdentifiers?: number[];
}

export interface WillOptions {
  topic: string;
  payload: string | Uint8Array;
  qos?: QoS;
  retain?: boolean;
  /** 5.0 only. */
  properties?: PublishProperties & { willDelayInterval?: number };
}

export interface ConnectOptions {
  /** Empty: a 5.0 broker assigns one (then `client.clientId` holds it); 3.1.1 needs `clean: true` for that. */
  clientId?: string;
  /** Clean Session (3.1.1) / Clean Start (5.0). Default true. */
  clean?: boolean;
  /** 4 = MQTT 3.1.1, 5 = MQTT 5.0. Default 5. */
  protocolVersion?: ClientProtocolVersion;
  /** Seconds; 0 turns keep alive off. Default 60. */
  keepAlive?: number;
  username?: string;
  password?: string | Uint8Array;
  will?: WillOptions;
  /** 5.0: seconds the session outlives the connection (0xFFFFFFFF = never expires). Default 0. */
  sessionExpiryInterval?: number;
  /** 5.0: QoS 1/2 messages the broker may have unacknowledged towards us. Default 65535. */
  receiveMaximum?: number;
  /** Milliseconds to wait for CONNACK. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Receives every message from the start: a resumed session's queued messages may arrive right
   * behind CONNACK, before `connect()` has resolved and any other handler could be added.
   */
  onMessage?: MessageHandler;
}

export interface SubscribeOptions {
  qos?: QoS;
  /** 5.0: do not receive this client's own publishes on this subscription. */
  noLocal?: boolean;
  /** 5.0: keep the RETAIN flag as the publisher set it. */
  retainAsPublished?: boolean;
  /** 5.0: 0 = send retained messages on subscribe, 1 = only if the subscription is new, 2 = never. */
  retainHandling?: 0 | 1 | 2;
  /** 5.0: echoed on every message this subscription delivers. */
  subscriptionIdentifier?: number;
}

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** 5.0 only; ignored by 3.1.1. */
  properties?: PublishProperties;
}

/** An application message as a subscriber receives it. */
export interface ReceivedMessage {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  properties: PublishProperties;
}

/**
 * Called for each message a subscription delivers. When it returns a promise, the acknowledgement
 * (PUBACK / PUBREC) waits for it: a consumer that must store or forward a message before the
 * broker forgets it gets at-least-once for free. Acknowledgements still leave in arrival order.
 */
export type MessageHandler = (message: ReceivedMessage) => void | Promise<void>;

/** The broker's answer to one filter of a SUBSCRIBE: the granted QoS, or a failure code (≥ 0x80). */
export interface SubscribeResult {
  filter: string;
  reasonCode: number;
}

/** Why a client's connection ended. */
export interface CloseInfo {
  /** end() was called (DISCONNECT sent), rather than the connection being lost or refused. */
  clean: boolean;
  /** 5.0 DISCONNECT reason code from the broker, when it sent one. */
  reasonCode?: number;
  error?: Error;
}
