import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { packageRoot } from '../../host/node/load-core.js';

/** The members of an interface in host/core/wasm/abi.ts: name → parameter count (null for a property). */
async function declared(name: 'CoreExports' | 'CoreImports'): Promise<Map<string, number | null>> {
  const path = join(await packageRoot(), 'host/core/wasm/abi.ts');
  const source = ts.createSourceFile(path, await readFile(path, 'utf8'), ts.ScriptTarget.ES2022);
  const members = new Map<string, number | null>();
  ts.forEachChild(source, (node) => {
    if (!ts.isInterfaceDeclaration(node) || node.name.text !== name) return;
    for (const member of node.members) {
      const key = (member.name as ts.Identifier).text;
      members.set(key, ts.isMethodSignature(member) ? member.parameters.length : null);
    }
  });
  assert.ok(members.size > 0, `interface ${name} not found in ${path}`);
  return members;
}

async function module(file: string): Promise<WebAssembly.Module> {
  return WebAssembly.compile(await readFile(join(await packageRoot(), 'build', file)));
}

async function instance(compiled: WebAssembly.Module): Promise<WebAssembly.Instance> {
  const env = { share_member_may_read: () => 1, abort: () => undefined };
  return WebAssembly.instantiate(compiled, { env });
}

describe('the wasm boundary (host/core/wasm/abi.ts)', () => {
  for (const file of ['arbor.wasm', 'arbor.debug.wasm']) {
    it(`declares every export of build/${file}, with its kind and parameter count, and nothing it lacks`, async () => {
      const expected = await declared('CoreExports');
      const compiled = await module(file);
      const exported = WebAssembly.Module.exports(compiled);
      assert.deepEqual(
        exported.map((e) => `${e.name}: ${e.kind}`).sort(),
        [...expected].map(([name, arity]) => `${name}: ${arity === null ? 'memory' : 'function'}`).sort(),
      );
      const exports = (await instance(compiled)).exports;
      for (const [name, arity] of expected) {
        if (arity !== null) assert.equal((exports[name] as (...args: number[]) => number).length, arity, `parameters of ${name}`);
      }
    });

    it(`declares every import build/${file} needs`, async () => {
      const expected = await declared('CoreImports');
      const imports = WebAssembly.Module.imports(await module(file));
      assert.deepEqual(imports.map((i) => `${i.module}.${i.name}: ${i.kind}`).sort(), [...expected.keys()].map((name) => `env.${name}: function`).sort());
    });
  }
});
