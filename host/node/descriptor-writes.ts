import { close, ftruncate, open, writev } from 'node:fs';
import { promisify } from 'node:util';

/**
 * Plain file descriptors for the files written on the acknowledgement path (the journal files, a
 * buddy's replica logs): the callback API's write costs less per call than a FileHandle's — no
 * handle object, no promise of its own inside fs/promises.
 */
export const openDescriptor = promisify(open);
export const truncateDescriptor = promisify(ftruncate);

export function closeDescriptor(fd: number): Promise<void> {
  return new Promise((resolve) => close(fd, () => resolve()));
}

/** Writes `buffers` (`length` bytes in all) at `position` in one `pwritev`; a write cut short is an error. */
export function writeAt(fd: number, buffers: Uint8Array[], position: number, length: number): Promise<void> {
  return new Promise((resolve, reject) => {
    writev(fd, buffers, position, (error, written) => {
      if (error) reject(error);
      else if (written !== length) reject(new Error(`write cut short: ${written} of ${length} bytes`));
      else resolve();
    });
  });
}
