// The conformance matrix: docs/CONFORMANCE.md is current, every MQTT statement is tested or listed
// with a reason, and coverage meets its targets (scripts/conformance.js --check). The check itself is
// also run on a copy of the inputs with one thing broken at a time, to see that it notices.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const root = join(import.meta.dirname, '..', '..');

function check(dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(dir, 'scripts', 'conformance.js'), '--check'], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('scripts/conformance.js', () => {
  it('--check passes on the repository: docs/CONFORMANCE.md is current and every statement is covered or listed', () => {
    const r = check(root);
    assert.equal(r.status, 0, r.out);
  });

  describe('--check on a copy with one thing broken', () => {
    let copy: string;
    before(() => {
      copy = mkdtempSync(join(tmpdir(), 'arbormq-conformance-'));
      for (const path of ['scripts/conformance.js', 'docs/conformance', 'docs/CONFORMANCE.md', 'test/conformance/v3.1.1', 'test/conformance/v5']) {
        cpSync(join(root, path), join(copy, path), { recursive: true });
      }
    });
    after(() => rmSync(copy, { recursive: true, force: true }));

    /** Applies `edit` to `path` in the copy, runs the check, and restores the file. */
    function broken(path: string, edit: (text: string) => string): { status: number | null; out: string } {
      const file = join(copy, path);
      const original = readFileSync(file, 'utf8');
      writeFileSync(file, edit(original));
      try {
        return check(copy);
      } finally {
        writeFileSync(file, original);
      }
    }

    it('passes on the unchanged copy', () => {
      const r = check(copy);
      assert.equal(r.status, 0, r.out);
    });

    it('fails when docs/CONFORMANCE.md is not what it would generate', () => {
      const r = broken('docs/CONFORMANCE.md', (t) => `${t}\nedited by hand\n`);
      assert.notEqual(r.status, 0);
      assert.match(r.out, /CONFORMANCE\.md is not what scripts\/conformance\.js generates/);
    });

    it('counts only tests that run: a skipped, todo or commented-out test citing a statement listed in NOT-TESTED.md covers nothing', () => {
      const idle = [
        "it.skip('[MQTT-4.6.0-2] skipped', () => undefined);",
        "it.todo('[MQTT-4.6.0-2] todo');",
        "test('[MQTT-4.6.0-2] skipped by option', { skip: 'not today' }, () => undefined);",
        "it('[MQTT-4.6.0-2] todo by option', { todo: true }, () => undefined);",
        "describe.skip('a skipped suite', () => {\n  it('[MQTT-4.6.0-2] inside', () => undefined);\n});",
        "describe('a todo suite', { todo: true }, () => {\n  it('[MQTT-4.6.0-2] inside', () => undefined);\n});",
        "// it('[MQTT-4.6.0-2] commented out', () => undefined);",
        "/*\nit('[MQTT-4.6.0-2] in a block comment', () => undefined);\n*/",
      ];
      const r = broken('test/conformance/v5/connect.test.ts', (t) => `${t}\n${idle.join('\n')}\n`);
      assert.equal(r.status, 0, r.out);
      // The same test running does cover it: NOT-TESTED.md may not list it then.
      const runs = broken('test/conformance/v5/connect.test.ts', (t) => `${t}\nit('[MQTT-4.6.0-2] runs', { skip: false }, () => undefined);\n`);
      assert.notEqual(runs.status, 0);
      assert.match(runs.out, /MQTT-4\.6\.0-2 is covered by a test; remove it from the list/);
    });

    it('fails when a test cites an id that is not in its catalogue', () => {
      const r = broken('test/conformance/v5/connect.test.ts', (t) => `${t}\nit('[MQTT-9.9.9-9] cites nothing real', () => undefined);\n`);
      assert.notEqual(r.status, 0);
      assert.match(r.out, /cites MQTT-9\.9\.9-9, which is not in docs\/conformance\/mqtt-5\.0-statements\.json/);
    });

    it('fails when a test name builds an id from an expression', () => {
      const r = broken('test/conformance/v5/connect.test.ts', (t) => `${t}\nfor (const n of [1]) it(\`[MQTT-3.1.2-\${n}] built\`, () => undefined);\n`);
      assert.notEqual(r.status, 0);
      assert.match(r.out, /is not a literal statement id/);
    });

    it('fails when a statement is neither covered nor listed in NOT-TESTED.md', () => {
      const r = broken('test/conformance/v5/NOT-TESTED.md', (t) => t.replace(/^MQTT-4\.6\.0-2: .*$/m, ''));
      assert.notEqual(r.status, 0);
      assert.match(r.out, /MQTT-4\.6\.0-2 \(client\) is neither covered by a test/);
    });

    it('fails when NOT-TESTED.md lists a statement a test covers, or gives a reason that is only "not done yet"', () => {
      const covered = broken('test/conformance/v5/NOT-TESTED.md', (t) => `${t}\nMQTT-3.1.0-2: something\n`);
      assert.notEqual(covered.status, 0);
      assert.match(covered.out, /MQTT-3\.1\.0-2 is covered by a test; remove it from the list/);
      const lazy = broken('test/conformance/v5/NOT-TESTED.md', (t) => t.replace(/^(MQTT-4\.6\.0-2): .*$/m, '$1: not implemented yet'));
      assert.notEqual(lazy.status, 0);
      assert.match(lazy.out, /MQTT-4\.6\.0-2 \(client\): "not implemented yet" says the test is not written yet/);
    });

    it('fails when MQTT 5.0 coverage drops below 200 statements', () => {
      const file = join(copy, 'test/conformance/v5/NOT-TESTED.md');
      const original = readFileSync(file, 'utf8');
      // Take the citations of most v5 test files away and list their statements as not tested instead.
      const statements = JSON.parse(readFileSync(join(copy, 'docs/conformance/mqtt-5.0-statements.json'), 'utf8')) as { id: string }[];
      const moved = ['publish.test.ts', 'operational.test.ts', 'connect.test.ts', 'subscribe.test.ts', 'data-representation.test.ts', 'ping-disconnect.test.ts'];
      const saved = moved.map((f) => [f, readFileSync(join(copy, 'test/conformance/v5', f), 'utf8')] as const);
      try {
        for (const [f, text] of saved) writeFileSync(join(copy, 'test/conformance/v5', f), text.replace(/\[MQTT-[^\]\s]*\]/g, ''));
        const listed = new Set(original.match(/^MQTT-\S+(?=:)/gm));
        const r0 = check(copy);
        const uncovered = [...r0.out.matchAll(/(MQTT-\S+) \(\w+\) is neither covered/g)].map((m) => m[1]!);
        appendFileSync(file, uncovered.filter((id) => !listed.has(id) && statements.some((s) => s.id === id)).map((id) => `${id}: a reason\n`).join(''));
        const r = check(copy);
        assert.notEqual(r.status, 0);
        assert.match(r.out, /MQTT 5\.0: \d+ statements covered by tests, the target is at least 200/);
      } finally {
        for (const [f, text] of saved) writeFileSync(join(copy, 'test/conformance/v5', f), text);
        writeFileSync(file, original);
      }
    });

    it('fails when a server statement of MQTT 3.1.1 is neither tested nor listed', () => {
      const r = broken('test/conformance/v3.1.1/ping-disconnect.test.ts', (t) => t.replaceAll('[MQTT-3.12.4-1]', ''));
      assert.notEqual(r.status, 0);
      assert.match(r.out, /MQTT-3\.12\.4-1 applies to the server and must be tested or listed/);
    });
  });
});
