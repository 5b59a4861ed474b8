#!/usr/bin/env node
// The MQTT conformance matrix: which normative statement of MQTT 3.1.1 and 5.0 is covered by which
// conformance test, and why the others are not.
//
//   node scripts/conformance.js           writes docs/CONFORMANCE.md
//   node scripts/conformance.js --check   exits 1 (listing every problem) when docs/CONFORMANCE.md is
//                                         stale, a statement is neither tested nor listed in NOT-TESTED.md,
//                                         a test cites an id its catalogue does not have, or coverage is
//                                         below the targets
//
// Inputs: docs/conformance/mqtt-{3.1.1,5.0}-statements.json (the catalogues), the test names of
// test/conformance/{v3.1.1,v5}/*.test.ts (every `it(` / `test(` that runs — not skipped, todo or in
// a comment — whose first argument is a string or template literal; the statement ids it covers are
// written in brackets, "[MQTT-3.1.2-24] …"), and
// test/conformance/{v3.1.1,v5}/NOT-TESTED.md ("MQTT-x.y.z-n: reason" lines). Plain Node, no dependencies.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUT = 'docs/CONFORMANCE.md';

const VERSIONS = [
  {
    name: 'MQTT 3.1.1',
    anchor: 'mqtt-311',
    catalogue: 'docs/conformance/mqtt-3.1.1-statements.json',
    tests: 'test/conformance/v3.1.1',
    // Every statement that constrains the server must be tested, or be listed with a real reason.
    target: { kind: 'server-complete' },
  },
  {
    name: 'MQTT 5.0',
    anchor: 'mqtt-50',
    catalogue: 'docs/conformance/mqtt-5.0-statements.json',
    tests: 'test/conformance/v5',
    target: { kind: 'minimum', covered: 200 },
  },
];

/**
 * Reasons that say "not done" rather than "cannot be done": a server or both statement listed in
 * NOT-TESTED.md with one of these fails --check.
 */
const LAZY_REASON = /\b(not (yet )?implemented|no .* yet|out of scope|todo|to ?do|later|lead's|left to|tbd)\b/i;

// ---------------------------------------------------------------------------------------------
// Reading the test files
// ---------------------------------------------------------------------------------------------

/** Skips whitespace and comments from `i`; returns the index of the next significant character. */
function skipSpace(src, i) {
  for (;;) {
    while (i < src.length && /\s/.test(src[i])) i++;
    if (src.startsWith('//', i)) {
      const end = src.indexOf('\n', i);
      i = end < 0 ? src.length : end + 1;
    } else if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 2;
    } else {
      return i;
    }
  }
}

/** Reads the quoted literal starting at `i` ('…', "…"); returns its text and the index after it. */
function readQuoted(src, i) {
  const quote = src[i];
  let out = '';
  for (let j = i + 1; j < src.length; j++) {
    const c = src[j];
    if (c === '\\') {
      out += unescape(src[j + 1]);
      j++;
    } else if (c === quote) {
      return { text: out, end: j + 1 };
    } else if (c === '\n') {
      break;
    } else {
      out += c;
    }
  }
  throw new Error(`unterminated string literal at offset ${i}`);
}

function unescape(c) {
  return { n: '\n', t: '\t', r: '\r', 0: '\0' }[c] ?? c;
}

/**
 * Reads the template literal starting at `i`. Its text keeps every `${…}` as written (the ids a
 * test cites must be literal text, but may sit inside an expression of the template, e.g. a
 * conditional choosing between two literal ids).
 */
function readTemplate(src, i) {
  let out = '';
  let j = i + 1;
  while (j < src.length) {
    const c = src[j];
    if (c === '\\') {
      out += unescape(src[j + 1]);
      j += 2;
    } else if (c === '`') {
      return { text: out, end: j + 1 };
    } else if (c === '$' && src[j + 1] === '{') {
      const end = skipBalanced(src, j + 1);
      out += src.slice(j, end);
      j = end;
    } else {
      out += c;
      j++;
    }
  }
  throw new Error(`unterminated template literal at offset ${i}`);
}

/** From the opening bracket at `i` ({, ( or [), the index after its matching close, skipping strings. */
function skipBalanced(src, i) {
  let depth = 0;
  let j = i;
  while (j < src.length) {
    const c = src[j];
    if (c === "'" || c === '"') {
      j = readQuoted(src, j).end;
      continue;
    }
    if (c === '`') {
      j = readTemplate(src, j).end;
      continue;
    }
    if (src.startsWith('//', j) || src.startsWith('/*', j)) {
      j = skipSpace(src, j);
      continue;
    }
    if (c === '{' || c === '(' || c === '[') depth++;
    else if (c === '}' || c === ')' || c === ']') {
      depth--;
      if (depth === 0) return j + 1;
    }
    j++;
  }
  throw new Error(`unbalanced bracket at offset ${i}`);
}

const lineOf = (src, i) => src.slice(0, i).split('\n').length;

/** `src` with every comment blanked out (same offsets, newlines kept): a test in a comment is no test. */
function withoutComments(src) {
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    let end;
    if (c === "'" || c === '"') end = readQuoted(src, i).end;
    else if (c === '`') end = readTemplate(src, i).end;
    else if (src.startsWith('//', i) || src.startsWith('/*', i)) {
      end = src.startsWith('//', i) ? src.indexOf('\n', i) : src.indexOf('*/', i + 2) + 2;
      if (end < i) end = src.length;
      out += src.slice(i, end).replace(/[^\n]/g, ' ');
      i = end;
      continue;
    } else end = i + 1;
    out += src.slice(i, end);
    i = end;
  }
  return out;
}

/** Whether the options object literal of a test or suite (`{ skip: … }`, `{ todo: … }`) keeps it from running. */
function notRunByOptions(options) {
  const m = /\b(skip|todo)\s*:\s*([^,}]+)/.exec(options);
  return m !== null && !/^(false|undefined|null|0|''|"")$/.test(m[2].trim());
}

/**
 * The tests of one file that run: { name, line }. Skipped and todo tests (`it.skip`, `it.todo`,
 * `{ skip }` / `{ todo }` options, or inside such a `describe`) and tests in comments do not: they
 * cover nothing.
 */
function testsOf(original) {
  const src = withoutComments(original);
  const call = /(?<![\w$.])(it|test|describe|suite)(?:\.(skip|only|todo))?\s*\(/g;
  /** [start, end) of the bodies of suites that do not run. */
  const idle = [];
  const found = [];
  for (let m; (m = call.exec(src)); ) {
    const open = m.index + m[0].length - 1;
    let i = skipSpace(src, open + 1);
    const q = src[i];
    if (q !== "'" && q !== '"' && q !== '`') continue; // a name that is not a literal: it cites nothing
    const { text, end } = q === '`' ? readTemplate(src, i) : readQuoted(src, i);
    let runs = m[2] !== 'skip' && m[2] !== 'todo';
    i = skipSpace(src, end);
    if (src[i] === ',') {
      i = skipSpace(src, i + 1);
      if (src[i] === '{' && notRunByOptions(src.slice(i, skipBalanced(src, i)))) runs = false;
    }
    if (m[1] === 'describe' || m[1] === 'suite') {
      if (!runs) idle.push([open, skipBalanced(src, open)]);
      continue;
    }
    if (!runs || idle.some(([a, b]) => m.index > a && m.index < b)) continue;
    found.push({ name: text.replace(/\s+/g, ' ').trim(), line: lineOf(src, m.index) });
  }
  return found;
}

const ID_IN_BRACKETS = /\[(MQTT-[^\]\s]*)\]/g;
const WELL_FORMED_ID = /^MQTT-\d[\d.-]*\d$/;

/** The statement ids a test name cites, and the bracketed parts that look like ids but are not literal. */
function citedIds(name) {
  const ids = [];
  const bad = [];
  for (const m of name.matchAll(ID_IN_BRACKETS)) {
    if (WELL_FORMED_ID.test(m[1])) ids.push(m[1]);
    else bad.push(m[0]);
  }
  // "[${id}]" or "[MQTT-4.3.${n}-1]": an id the scanner cannot read.
  for (const m of name.matchAll(/\[(?:MQTT-[^\]]*)?\$\{[^\]]*\]/g)) bad.push(m[0]);
  return { ids: [...new Set(ids)], bad };
}

// ---------------------------------------------------------------------------------------------
// One version
// ---------------------------------------------------------------------------------------------

function readNotTested(path) {
  const entries = new Map();
  const duplicates = [];
  if (!existsSync(path)) return { entries, duplicates };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(MQTT-[^\s:]+):\s*(.*\S)\s*$/.exec(line);
    if (!m) continue;
    if (entries.has(m[1])) duplicates.push(m[1]);
    entries.set(m[1], m[2]);
  }
  return { entries, duplicates };
}

function analyse(v) {
  const problems = [];
  const statements = JSON.parse(readFileSync(join(root, v.catalogue), 'utf8'));
  const known = new Set(statements.map((s) => s.id));
  const dir = join(root, v.tests);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .sort();

  /** id → [{ file, name }] in file order, then source order. */
  const coverage = new Map();
  let testCount = 0;
  let citing = 0;
  for (const file of files) {
    const rel = relative(root, join(dir, file)).split('\\').join('/');
    let tests;
    try {
      tests = testsOf(readFileSync(join(dir, file), 'utf8'));
    } catch (error) {
      problems.push(`${rel}: cannot read the test names (${error.message})`);
      continue;
    }
    for (const t of tests) {
      testCount++;
      const { ids, bad } = citedIds(t.name);
      for (const b of bad) problems.push(`${rel}:${t.line}: ${b} is not a literal statement id (write the id itself in the test name)`);
      if (ids.length > 0) citing++;
      for (const id of ids) {
        if (!known.has(id)) {
          problems.push(`${rel}:${t.line}: cites ${id}, which is not in ${v.catalogue}`);
          continue;
        }
        const list = coverage.get(id) ?? [];
        if (!list.some((x) => x.file === file && x.name === t.name)) list.push({ file, name: t.name });
        coverage.set(id, list);
      }
    }
  }

  const notTestedPath = join(dir, 'NOT-TESTED.md');
  const notTestedRel = relative(root, notTestedPath).split('\\').join('/');
  const { entries: notTested, duplicates } = readNotTested(notTestedPath);
  for (const id of duplicates) problems.push(`${notTestedRel}: ${id} is listed twice`);
  for (const [id, reason] of notTested) {
    if (!known.has(id)) problems.push(`${notTestedRel}: ${id} is not in ${v.catalogue}`);
    else if (coverage.has(id)) problems.push(`${notTestedRel}: ${id} is covered by a test; remove it from the list`);
    if (!reason) problems.push(`${notTestedRel}: ${id} has no reason`);
  }

  const rows = statements.map((s) => {
    const tests = coverage.get(s.id);
    if (tests) return { ...s, status: 'covered', tests };
    if (notTested.has(s.id)) return { ...s, status: 'not-tested', reason: notTested.get(s.id) };
    problems.push(`${v.name}: ${s.id} (${s.applies}) is neither covered by a test in ${v.tests} nor listed in ${notTestedRel}`);
    return { ...s, status: 'uncovered' };
  });

  const count = (status, applies) => rows.filter((r) => r.status === status && (applies === undefined || r.applies === applies)).length;
  const summary = {
    total: rows.length,
    covered: count('covered'),
    notTested: count('not-tested'),
    uncovered: count('uncovered'),
    byApplies: ['server', 'both', 'client'].map((a) => ({
      applies: a,
      total: rows.filter((r) => r.applies === a).length,
      covered: count('covered', a),
      notTested: count('not-tested', a),
      uncovered: count('uncovered', a),
    })),
    tests: testCount,
    citing,
    files: files.length,
  };

  if (v.target.kind === 'minimum' && summary.covered < v.target.covered) {
    problems.push(`${v.name}: ${summary.covered} statements covered by tests, the target is at least ${v.target.covered}`);
  }
  for (const r of rows) {
    if (r.status === 'not-tested' && LAZY_REASON.test(r.reason)) {
      problems.push(`${notTestedRel}: ${r.id} (${r.applies}): "${r.reason}" says the test is not written yet, not why it cannot be`);
    }
  }
  if (v.target.kind === 'server-complete') {
    for (const r of rows) {
      if (r.applies !== 'client' && r.status === 'uncovered') problems.push(`${v.name}: ${r.id} applies to the ${r.applies === 'both' ? 'server (both)' : 'server'} and must be tested or listed with the reason it cannot be`);
    }
  }
  return { v, rows, summary, problems };
}

// ---------------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------------

const cell = (s) => String(s).replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\*/g, '\\*').replace(/_/g, '\\_');

function coverageCell(r) {
  if (r.status === 'not-tested') return `not tested: ${cell(r.reason)}`;
  if (r.status === 'uncovered') return '**UNCOVERED**';
  const byFile = new Map();
  for (const t of r.tests) {
    const list = byFile.get(t.file) ?? [];
    list.push(t);
    byFile.set(t.file, list);
  }
  return [...byFile]
    .map(([file, tests]) => `\`${file}\`: ${tests.map((t) => cell(t.name)).join('<br>')}`)
    .join('<br>');
}

function render(results) {
  const out = [];
  out.push('# MQTT conformance matrix');
  out.push('');
  out.push('<!-- Generated by scripts/conformance.js; do not edit by hand. -->');
  out.push('');
  out.push(
    'Every normative statement of MQTT 3.1.1 and MQTT 5.0 (the catalogues in `docs/conformance/`), in the order of the specification,',
    'with the conformance tests that cover it or the reason it has none. A test covers the statements whose ids its name cites in',
    'brackets (`it(\'[MQTT-3.1.2-24] …\')`) in `test/conformance/v3.1.1/*.test.ts` and `test/conformance/v5/*.test.ts`; a statement',
    'without a test is listed with its reason in that folder\'s `NOT-TESTED.md`. Only tests that run count: a skipped or todo test',
    '(`it.skip`, `it.todo`, a `skip` / `todo` option, or inside such a `describe`) and a test in a comment cover nothing.',
  );
  out.push('');
  out.push('This file is generated. After changing a conformance test name or a `NOT-TESTED.md`, regenerate it with');
  out.push('');
  out.push('```sh');
  out.push('node scripts/conformance.js');
  out.push('```');
  out.push('');
  out.push(
    '`node scripts/conformance.js --check` (run by `test/scripts/conformance.test.ts`) fails when this file is out of date, a statement is',
    'neither tested nor listed, a test cites an id that is not in its catalogue, or coverage falls below the targets: MQTT 5.0 at least',
    '200 statements covered by tests; MQTT 3.1.1 every statement that applies to the server (or both) tested or listed with a reason it',
    'cannot be tested.',
  );
  out.push('');
  out.push('## Summary');
  out.push('');
  out.push('| version | statements | covered by a test | not tested (with reason) | uncovered | test definitions citing ids |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const { v, summary: s } of results) {
    out.push(`| [${v.name}](#${v.anchor}) | ${s.total} | ${s.covered} | ${s.notTested} | ${s.uncovered} | ${s.citing} of ${s.tests} in ${s.files} files |`);
  }
  out.push('');
  out.push('By whom the statement constrains (`applies`):');
  out.push('');
  out.push('| version | applies | statements | covered by a test | not tested (with reason) | uncovered |');
  out.push('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const { v, summary: s } of results) {
    for (const a of s.byApplies) out.push(`| ${v.name} | ${a.applies} | ${a.total} | ${a.covered} | ${a.notTested} | ${a.uncovered} |`);
  }
  for (const { v, rows, summary: s } of results) {
    out.push('');
    out.push(`<a id="${v.anchor}"></a>`);
    out.push('');
    out.push(`## ${v.name}`);
    out.push('');
    out.push(
      `${s.total} statements from \`${v.catalogue}\`: ${s.covered} covered by tests in \`${v.tests}/\`, ${s.notTested} not tested with the reason from \`${v.tests}/NOT-TESTED.md\`, ${s.uncovered} uncovered.`,
    );
    out.push('');
    out.push('| id | section | applies | covered by (test file: test name) or reason |');
    out.push('| --- | --- | --- | --- |');
    for (const r of rows) out.push(`| ${r.id} | ${r.section} | ${r.applies} | ${coverageCell(r)} |`);
  }
  out.push('');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------

function main() {
  const check = process.argv.includes('--check');
  const results = VERSIONS.map(analyse);
  const text = render(results);
  const problems = results.flatMap((r) => r.problems);
  const path = join(root, OUTPUT);
  for (const { v, summary: s } of results) {
    console.log(`${v.name}: ${s.total} statements, ${s.covered} covered by tests, ${s.notTested} not tested (listed with reason), ${s.uncovered} uncovered`);
  }
  if (check) {
    const current = existsSync(path) ? readFileSync(path, 'utf8') : null;
    if (current === null) problems.unshift(`${OUTPUT} does not exist; run node scripts/conformance.js`);
    else if (current !== text) problems.unshift(`${OUTPUT} is not what scripts/conformance.js generates; run node scripts/conformance.js`);
    if (problems.length > 0) {
      console.error(`conformance check failed (${problems.length} problem${problems.length === 1 ? '' : 's'}):`);
      for (const p of problems) console.error(`  - ${p}`);
      process.exit(1);
    }
    console.log(`${OUTPUT} is up to date; every statement is covered or listed.`);
    return;
  }
  writeFileSync(path, text);
  console.log(`wrote ${OUTPUT}`);
  if (problems.length > 0) {
    console.error(`${problems.length} problem${problems.length === 1 ? '' : 's'} (--check fails until they are fixed):`);
    for (const p of problems) console.error(`  - ${p}`);
    process.exitCode = 1;
  }
}

main();
