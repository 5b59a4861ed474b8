/** The broker refused the CONNECT: `reasonCode` is the 3.1.1 return code or the 5.0 reason code. */
export class ConnectRefusedError extends Error {
  constructor(
    readonly reasonCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectRefusedError';
  }
}

/** A PUBLISH, SUBSCRIBE or UNSUBSCRIBE the broker answered with a failure reason code (≥ 0x80). */
export class ReasonCodeError extends Error {
  constructor(
    readonly reasonCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'ReasonCodeError';
  }
}

/** The connection ended before the operation completed; a QoS 1/2 message may or may not have arrived. */
export class ConnectionClosedError extends Error {
  constructor(message = 'the MQTT connection is closed') {
    super(message);
    this.name = 'ConnectionClosedError';
  }
}
