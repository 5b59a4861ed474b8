import { Core, type CoreOptions } from '../core/wasm/core.js';
import { compileCore, type WasmSource } from './compile-core.js';

/** A fresh core instance from `source` (compiled once per source). */
export async function loadBrowserCore(source: WasmSource, options?: CoreOptions): Promise<Core> {
  return Core.load(await compileCore(source), options);
}
