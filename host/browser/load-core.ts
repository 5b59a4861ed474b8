import { Core, type CoreOptions } from '../core/wasm.js';

/** Compiled modules by URL: several brokers in one page (or a reconnecting worker) compile once. */
const compiled = new Map<string, Promise<WebAssembly.Module>>();

async function compile(url: string): Promise<WebAssembly.Module> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load the ArborMQ core from ${url}: HTTP ${response.status}`);
  // Streaming compilation needs the application/wasm type; a server that sends another still works.
  if ((response.headers.get('content-type') ?? '').split(';')[0]!.trim() === 'application/wasm') {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

/** A fresh core instance from the wasm at `url`; the module is fetched and compiled once per URL. */
export async function loadBrowserCore(url: string, options?: CoreOptions): Promise<Core> {
  let module = compiled.get(url);
  if (!module) {
    module = compile(url);
    compiled.set(url, module);
    // A failed load may succeed later (the network came back): do not cache the failure.
    module.catch(() => compiled.delete(url));
  }
  return Core.load(await module, options);
}
