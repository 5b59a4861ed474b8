// The browser bundle: built from host/browser with esbuild, free of Node built-ins (the build
// refuses them), within its size budget, finding arbor.wasm next to itself at run time.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { BUDGET_GZIP_BYTES, buildBrowser, noNodeBuiltins, WASM } from '../../scripts/build-browser.js';

describe('the browser bundle', () => {
  it('fails to build when a Node built-in is imported, naming the importer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbormq-bundle-'));
    try {
      for (const specifier of ['node:fs', 'fs', 'node:crypto', 'buffer']) {
        const entry = join(dir, 'entry.ts');
        await writeFile(entry, `import * as m from '${specifier}';\nexport const x = m;\n`);
        await assert.rejects(
          build({ entryPoints: [entry], bundle: true, platform: 'browser', write: false, logLevel: 'silent', plugins: [noNodeBuiltins] }),
          (e: { errors?: { text: string }[] }) => e.errors?.some((x) => x.text.includes(`Node built-in "${specifier}"`) && x.text.includes('entry.ts')) === true,
          specifier,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('builds both bundles without Node built-ins, and the page (wasm + JS) stays within budget', async () => {
    const files = await buildBrowser({ write: false });
    const page = files.get('arbormq.js')!;
    const worker = files.get('arbormq-worker.js')!;
    const text = new TextDecoder().decode(page);
    // The default wasm location is computed at run time from the module's own URL.
    assert.match(text, /import\.meta\.url/);
    assert.doesNotMatch(new TextDecoder().decode(worker), /import\.meta/, 'the worker is a classic script');
    const gzip = gzipSync(page, { level: 9 }).length + gzipSync(await readFile(WASM), { level: 9 }).length;
    assert.ok(gzip <= BUDGET_GZIP_BYTES, `page is ${gzip} bytes gzip, budget ${BUDGET_GZIP_BYTES}`);
  });
});
