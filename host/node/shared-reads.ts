/**
 * The one buffer plain TCP connections read into, on libuv handles (handle-transport.ts) or on
 * net.Sockets (socket-transport.ts): larger reads than Node's 64 KiB mean fewer system calls per
 * large PUBLISH, and it is one buffer per process, not one per read. One serves every connection
 * because libuv reads one handle and runs its callback before it reads another, and a connection
 * copies what it keeps of a chunk during the callback (TransportEvents.received).
 */
const READ_BYTES = 256 * 1024;
let buffer: Buffer | null = null;

export function sharedReadBuffer(): Buffer {
  return (buffer ??= Buffer.allocUnsafeSlow(READ_BYTES));
}
