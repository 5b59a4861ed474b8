import type { Transport } from './transport.js';
import type { Core } from './wasm.js';

const SCRATCH_SIZE = 16 * 1024;
const enum Piece {
  Scratch = 0,
  Arena = 1,
  External = 2,
}

/**
 * One connection's outgoing bytes for the current tick. Headers are written into a scratch buffer,
 * payloads are referenced in the arena (one reference per piece, released when the transport is
 * done with the batch), and everything leaves in one transport.write() per tick.
 */
export class Outbox {
  /** Flat [kind, a, b, c] quads: Scratch(start, end), Arena(handle, offset, length), External(index). */
  private pieces: number[] = [];
  private externals: Uint8Array[] = [];
  private handles: number[] = [];
  private scratch: Uint8Array;
  private scratchPos = 0;
  private spare: Uint8Array[] = [];
  /** Bytes queued here and not yet given to the transport. */
  pendingBytes = 0;

  constructor(private readonly core: Core) {
    this.scratch = new Uint8Array(SCRATCH_SIZE);
  }

  get empty(): boolean {
    return this.pieces.length === 0;
  }

  /** Reserves `n` bytes of scratch; write them at the returned offset of `this.buffer`. */
  reserve(n: number): number {
    if (this.scratchPos + n > this.scratch.length) this.rotateScratch(n);
    const start = this.scratchPos;
    this.scratchPos += n;
    const last = this.pieces.length - 4;
    if (last >= 0 && this.pieces[last] === Piece.Scratch && this.pieces[last + 2] === start) {
      this.pieces[last + 2] = start + n;
    } else {
      this.pieces.push(Piece.Scratch, start, start + n, 0);
    }
    this.pendingBytes += n;
    return start;
  }

  /** The scratch buffer that offsets from reserve() point into. */
  get buffer(): Uint8Array {
    return this.scratch;
  }

  /** Queues `length` bytes of an arena buffer, taking one reference that the flush's completion releases. */
  arena(handle: number, offset: number, length: number): void {
    if (length === 0) return;
    this.core.retain(handle);
    this.handles.push(handle);
    this.pieces.push(Piece.Arena, handle, offset, length);
    this.pendingBytes += length;
  }

  /** Queues bytes the caller will not touch again. */
  bytes(chunk: Uint8Array): void {
    this.pieces.push(Piece.External, this.externals.length, 0, 0);
    this.externals.push(chunk);
    this.pendingBytes += chunk.length;
  }

  /** Hands everything queued to the transport as one batch. */
  flush(transport: Transport): void {
    if (this.pieces.length === 0) return;
    const pieces = this.pieces;
    const views: Uint8Array[] = [];
    // Arena views are made only now: memory may have grown (detaching older views) while queueing.
    const mem = this.core.bytes();
    const scratch = this.scratch;
    for (let i = 0; i < pieces.length; i += 4) {
      switch (pieces[i]) {
        case Piece.Scratch:
          views.push(scratch.subarray(pieces[i + 1], pieces[i + 2]));
          break;
        case Piece.Arena: {
          const start = this.core.ptr(pieces[i + 1]!) + pieces[i + 2]!;
          views.push(mem.subarray(start, start + pieces[i + 3]!));
          break;
        }
        default:
          views.push(this.externals[pieces[i + 1]!]!);
      }
    }
    const handles = this.handles;
    const usedScratch = this.scratchPos > 0 ? scratch : null;
    this.pieces = [];
    this.externals = [];
    this.handles = [];
    this.pendingBytes = 0;
    if (usedScratch) this.takeFreshScratch();
    transport.write(views, () => {
      for (let i = 0; i < handles.length; i++) this.core.release(handles[i]!);
      if (usedScratch && this.spare.length < 2) this.spare.push(usedScratch);
    });
  }

  /** Releases what was queued but never sent (the connection died first). */
  discard(): void {
    for (const h of this.handles) this.core.release(h);
    this.pieces = [];
    this.externals = [];
    this.handles = [];
    this.pendingBytes = 0;
    this.scratchPos = 0;
  }

  private takeFreshScratch(): void {
    this.scratch = this.spare.pop() ?? new Uint8Array(SCRATCH_SIZE);
    this.scratchPos = 0;
  }

  /** The current scratch is full: queued pieces keep pointing at it, new headers go to a fresh one. */
  private rotateScratch(n: number): void {
    // Pieces already queued still reference the old scratch; materialise them as externals.
    const old = this.scratch;
    for (let i = 0; i < this.pieces.length; i += 4) {
      if (this.pieces[i] === Piece.Scratch) {
        this.pieces[i] = Piece.External;
        const index = this.externals.length;
        this.externals.push(old.subarray(this.pieces[i + 1], this.pieces[i + 2]));
        this.pieces[i + 1] = index;
      }
    }
    this.scratch = n > SCRATCH_SIZE ? new Uint8Array(n) : (this.spare.pop() ?? new Uint8Array(SCRATCH_SIZE));
    this.scratchPos = 0;
  }
}
