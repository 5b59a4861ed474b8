// arbor.wasm imported as bytes: esbuild's "binary" loader (scripts/build-browser.ts) inlines it.
declare module '*.wasm' {
  const bytes: Uint8Array<ArrayBuffer>;
  export default bytes;
}
