import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import type { RunResults } from '../../bench/run.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS = join(ROOT, 'bench/RESULTS.md');

describe('npm run bench -- --quick (ArborMQ only)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'arbormq-bench-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every scenario and the core micro-benchmarks, with positive rates and an exact wildcard check', { timeout: 240_000 }, async () => {
    const before = existsSync(RESULTS) ? statSync(RESULTS).mtimeMs : null;
    const out = join(dir, 'results.md');
    const json = join(dir, 'results.json');
    // The lead's Notes section survives a rewrite of the report.
    writeFileSync(out, '# old report\n\n## Fan-in, QoS 0\n\nold\n\n## Notes\n\nKept by the lead.\n');
    let stderr = '';
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--brokers', 'arbormq', '--out', out, '--json', json], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 220_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 0, stderr);

    const results = JSON.parse(readFileSync(json, 'utf8')) as RunResults;
    assert.equal(results.mode, 'quick');
    assert.ok(results.scenarios.length >= 8, `scenarios: ${results.scenarios.join(', ')}`);
    for (const scenario of results.scenarios) {
      const s = results.results[scenario]?.arbormq;
      assert.ok(s, `${scenario}: no result`);
      assert.ok(s.ok, `${scenario} failed: ${s.error}`);
      assert.ok(s.rate > 0, `${scenario}: rate ${s.rate}`);
    }
    const wildcard = results.results.wildcard!.arbormq!;
    assert.equal(wildcard.metrics.exactCheck, true, wildcard.notes.join('; '));
    assert.equal(wildcard.metrics.topicsPublished, 30_000);
    assert.ok(results.core?.ok, results.core?.error);
    for (const row of results.core!.trie!) assert.equal(row.disagreements, 0, `wasm and JS tries disagree at ${row.filters} filters`);

    // The durable scenarios ran against LevelDB: the broker wrote to storage for every message.
    for (const scenario of ['p2p-qos1-durable', 'p2p-qos1-durable-os'] as const) {
      const s = results.results[scenario]!.arbormq!;
      assert.ok((s.metrics.storageBytesPerMsg as number) > 0, `${scenario}: storage bytes per message ${s.metrics.storageBytesPerMsg}`);
      assert.equal(s.metrics.lost, 0, `${scenario}: ${s.notes.join('; ')}`);
    }

    // The ACL fan-out ran against a broker enforcing the 1,000-rule file, next to the plain fan-out.
    assert.ok(results.results['fan-out-acl']!.arbormq!.brokerInfo?.aclFile, 'the broker was given the ACL file');

    const md = readFileSync(out, 'utf8');
    assert.match(md, /## Wildcard routing/);
    assert.match(md, /## Fan-out, QoS 0, with a 1,000-rule ACL[^#]*\| ArborMQ \|[^\n]*\| \d+% \|/);
    assert.match(md, /## Point to point, QoS 1, durable/);
    assert.doesNotMatch(md, /old report/);
    assert.match(md, /## Notes\n\nKept by the lead\.\n$/);
    assert.equal(existsSync(RESULTS) ? statSync(RESULTS).mtimeMs : null, before, 'bench/RESULTS.md must not be touched by --out runs');
  });
});
