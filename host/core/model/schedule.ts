/**
 * Runs `fn` once the current I/O callbacks are done, so writes made while handling them go out as
 * one batch. Node: setImmediate runs after the whole poll phase (every readable socket). Browsers
 * have no I/O phase; the end of the current task is the natural batch boundary.
 */
export const afterIo: (fn: () => void) => void =
  typeof setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => queueMicrotask(fn);
