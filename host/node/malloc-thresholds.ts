// Node reads a socket into a fresh 64 KiB malloc'd buffer per read — here TLS sockets and WebSockets
// (plain TCP sockets read into one shared buffer, socket-transport.ts). With glibc's default thresholds the
// top of the heap those buffers leave free is trimmed back to the kernel after each GC, so the next
// reads fault their pages in again: about one page fault per 4 KiB received, most of a large
// payload's CPU (bench/RESULTS.md, "Payload sweep"). glibc raises its trim threshold to twice the size
// of the largest mmapped block freed (up to 32 MiB), so one such block, allocated and dropped once,
// keeps up to 32 MiB of freed heap for reuse. Other allocators ignore it: the block costs one
// allocation and nothing of RSS (it is never written).

let primed = false;

/** Once per process: lets glibc keep freed socket buffers instead of returning and faulting them in again. */
export function keepFreedHeapForReuse(): void {
  if (primed) return;
  primed = true;
  Buffer.allocUnsafeSlow(16 * 1024 * 1024);
}
