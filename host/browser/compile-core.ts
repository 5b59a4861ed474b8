// Fetching and compiling arbor.wasm, apart from instantiating it (load-core.ts): a page can start
// the download while the broker's own code is still on its way.

/** Where the core comes from: the URL of arbor.wasm, or its bytes (arbormq/browser/inline carries them). */
export type WasmSource = string | Uint8Array<ArrayBuffer>;

/** Compiled modules by source: several brokers in one page (or a reconnecting worker) compile once. */
const compiled = new Map<WasmSource, Promise<WebAssembly.Module>>();

async function compile(source: WasmSource): Promise<WebAssembly.Module> {
  if (typeof source !== 'string') return WebAssembly.compile(source);
  const response = await fetch(source);
  if (!response.ok) {
    throw new Error(
      `cannot load the ArborMQ core from ${source}: HTTP ${response.status} (serve dist/browser/arbor.wasm there, pass wasmUrl, or import arbormq/browser/inline, which carries the core)`,
    );
  }
  // Streaming compilation needs the application/wasm type; a server that sends another still works.
  if ((response.headers.get('content-type') ?? '').split(';')[0]!.trim() === 'application/wasm') {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

/** The compiled core from `source`, fetched and compiled once per source. */
export function compileCore(source: WasmSource): Promise<WebAssembly.Module> {
  let module = compiled.get(source);
  if (!module) {
    module = compile(source);
    compiled.set(source, module);
    // A failed load may succeed later (the network came back): do not cache the failure.
    module.catch(() => compiled.delete(source));
  }
  return module;
}
