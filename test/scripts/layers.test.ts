import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { packageRoot } from '../../host/node/load-core.js';
import { checkLayers, importsOf, violations } from '../../scripts/check-layers.js';

describe('host/core layers (scripts/check-layers.ts)', () => {
  it('has no import from a layer above the importing file, type-only imports included', async () => {
    assert.deepEqual(checkLayers(await packageRoot()), []);
  });

  it('reports an upward import of every form: a value, a type, a re-export, a dynamic import', () => {
    const source = [
      "import { Broker } from '../broker.js';",
      "import type { Connection } from '../connection.js';",
      "export { ClientContext } from '../handlers/context.js';",
      "const lazy = () => import('../connection.js');",
    ].join('\n');
    const found = violations('host/core/model/router.ts', importsOf(source));
    assert.equal(found.length, 4, found.join('\n'));
    for (const v of found) assert.match(v, /a layer may only import its own or lower ones/);
  });

  it('lets a layer import itself and the layers below, and keeps codec and wasm apart', () => {
    assert.deepEqual(violations('host/core/handlers/publish.ts', ['../model/message.js', '../codec/publish.js', '../wasm/abi.js', './context.js']), []);
    assert.equal(violations('host/core/codec/publish.ts', ['../wasm/abi.js']).length, 1);
    assert.equal(violations('host/core/wasm/core.ts', ['../codec/constants.js']).length, 1);
  });

  it('keeps host/core free of anything outside it (Node built-ins, other hosts) and the leaf files free of imports', () => {
    assert.equal(violations('host/core/model/store.ts', ['node:fs']).length, 1);
    assert.equal(violations('host/core/connection.ts', ['../node/server.js']).length, 1);
    assert.match(violations('host/core/model/outcomes.ts', ['./session.js']).join(), /is a leaf but imports/);
  });
});
