// The layering of src/ (docs/architecture.md), checked over the import graph: every
// relative `import … from`, `export … from` and `import()` of every .ts file under src/,
// type-only imports included (a type import couples rooms as much as a value import).
// A file's room is its first directory under src/; the top-level files (app.module.ts,
// bootstrap.ts, version.ts) are the composition root, which may import anything.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Transports: how requests come in. Only the composition root and openapi/ import them. */
const GROUPS: Readonly<Record<string, readonly string[]>> = { transports: ['api', 'grpc', 'ui', 'cli', 'health'] };

/**
 * The rules, one row per group of rooms: what the rooms of a row may not import. Imports
 * inside a room are always allowed; the composition root may import anything. Whatever
 * a row does not forbid is allowed. docs/architecture.md shows this same table (checked
 * below): change both together.
 */
const LAYERS: readonly { rooms: readonly string[]; mayNotImport: readonly string[] }[] = [
  // A transport hands a request to admission or jobs; it never reaches into another
  // transport, nor into the workers (the composition root wires those).
  { rooms: ['transports'], mayNotImport: ['transports', 'workers'] },
  { rooms: ['admission'], mayNotImport: ['workers', 'transports'] },
  { rooms: ['jobs'], mayNotImport: ['workers', 'admission', 'transports'] },
  { rooms: ['workers'], mayNotImport: ['admission', 'transports'] },
  { rooms: ['engines'], mayNotImport: ['jobs', 'workers', 'admission', 'contexts', 'webhooks', 'transports'] },
  { rooms: ['analysis'], mayNotImport: ['engines', 'jobs', 'workers', 'admission', 'transports'] },
  {
    rooms: ['contexts', 'webhooks', 'secrets', 'exceptions', 'metrics', 'catalogue'],
    mayNotImport: ['workers', 'admission', 'transports'],
  },
  // Named policies: store and pure evaluation, which admission, the workers and the API call.
  { rooms: ['policies'], mayNotImport: ['workers', 'admission', 'transports'] },
  { rooms: ['runtime'], mayNotImport: ['jobs', 'workers', 'admission', 'transports'] },
  // The kernel. config may import auth/: it parses the repository patterns of its
  // variables at load time with auth's parser.
  { rooms: ['config', 'errors', 'net', 'oci', 'auth'], mayNotImport: ['jobs', 'workers', 'admission', 'engines', 'transports'] },
  // openapi/ writes the document from the transports' decorators: it may import them.
  { rooms: ['openapi'], mayNotImport: ['workers'] },
];

const expand = (names: readonly string[]) => names.flatMap((n) => GROUPS[n] ?? [n]);
/** A row of LAYERS as docs/architecture.md writes it. */
const show = (names: readonly string[]) => names.map((n) => (n in GROUPS ? n : `\`${n}\``)).join(', ');

/** The composition root's pseudo-room: the files directly under src/. */
const ROOT = '(root)';

/** Nest roles that may appear as a dot suffix of a file name (`jobs.controller.ts`). */
const ROLE_SUFFIXES = ['module', 'controller', 'grpc-controller', 'service', 'guard', 'filter', 'processor', 'schema', 'dto'];
const KEBAB = '[a-z0-9]+(?:-[a-z0-9]+)*';
const SRC_FILE_NAME = new RegExp(`^${KEBAB}(?:\\.(?:${ROLE_SUFFIXES.join('|')}))?\\.ts$`);
const TEST_FILE_NAME = new RegExp(`^${KEBAB}(?:\\.test)?\\.ts$`);
const DIR_NAME = new RegExp(`^${KEBAB}$`);

const PROJECT_DIR = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(PROJECT_DIR, 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f))
    .sort();
}

const roomOf = (file: string): string => {
  const parts = relative(SRC, file).split(sep);
  return parts.length === 1 ? ROOT : parts[0]!;
};

interface Edge {
  from: string;
  to: string;
}

/** Every relative import of every file under src/, resolved to the .ts file it names. */
function importGraph(): Edge[] {
  const edges: Edge[] = [];
  for (const file of tsFiles(SRC)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      edges.push({ from: file, to: resolve(dirname(file), fileName).replace(/\.js$/, '.ts') });
    }
  }
  return edges;
}

const rel = (file: string) => relative(PROJECT_DIR, file);

describe('architecture', () => {
  const edges = importGraph();
  const rooms = [...new Set(tsFiles(SRC).map(roomOf))].filter((r) => r !== ROOT).sort();

  it('sees the import graph of src/', () => {
    assert.ok(edges.length > 500, `only ${edges.length} imports found`);
    assert.ok(edges.some((e) => rel(e.from) === 'src/app.module.ts'));
  });

  it('has a rule row for every room of src/', () => {
    const ruled = new Set(LAYERS.flatMap((l) => expand(l.rooms)));
    const missing = rooms.filter((r) => !ruled.has(r));
    if (missing.length)
      assert.fail(`rooms without a row in LAYERS (test/unit/architecture.test.ts) and docs/architecture.md: ${missing.join(', ')}`);
  });

  it('keeps every import within the layering', () => {
    const forbidden = new Map<string, Set<string>>();
    for (const l of LAYERS) for (const r of expand(l.rooms)) forbidden.set(r, new Set(expand(l.mayNotImport)));
    const violations: string[] = [];
    for (const { from, to } of edges) {
      const [a, b] = [roomOf(from), roomOf(to)];
      if (a !== b && forbidden.get(a)?.has(b)) violations.push(`${rel(from)} → ${rel(to)}  (${a} may not import ${b})`);
    }
    if (violations.length)
      assert.fail(`${violations.length} imports across the layering (docs/architecture.md):\n  ${violations.join('\n  ')}`);
  });

  it('imports only files that exist', () => {
    const files = new Set(tsFiles(SRC));
    const dangling = edges.filter((e) => e.to.startsWith(SRC + sep) && !files.has(e.to)).map((e) => `${rel(e.from)} → ${rel(e.to)}`);
    if (dangling.length) assert.fail(`imports the graph cannot resolve (the check would miss them):\n  ${dangling.join('\n  ')}`);
  });

  it('docs/architecture.md shows the same rules', () => {
    const doc = readFileSync(join(PROJECT_DIR, 'docs', 'architecture.md'), 'utf8');
    const rows = [
      ...Object.entries(GROUPS).map(([group, rooms]) => `${group}: ${show(rooms)}`),
      ...LAYERS.map((l) => `| ${show(l.rooms)} | ${show(l.mayNotImport)} |`),
    ];
    const missing = rows.filter((row) => !doc.includes(row));
    if (missing.length)
      assert.fail(
        `docs/architecture.md lacks these lines of GROUPS and LAYERS (test/unit/architecture.test.ts):\n  ${missing.join('\n  ')}`,
      );
  });

  it('names files in kebab-case, with a dot suffix only for a Nest role', () => {
    const bad: string[] = [];
    for (const [dir, pattern] of [
      [SRC, SRC_FILE_NAME],
      [join(PROJECT_DIR, 'test'), TEST_FILE_NAME],
    ] as const) {
      for (const file of tsFiles(dir)) {
        if (!pattern.test(basename(file))) bad.push(rel(file));
        for (const d of relative(dir, dirname(file)).split(sep)) if (d && !DIR_NAME.test(d)) bad.push(rel(dirname(file)));
      }
    }
    if (bad.length) {
      const rule = `kebab-case; a dot suffix only .${ROLE_SUFFIXES.join(', .')}, or .test under test/`;
      assert.fail(`names outside the convention (${rule}):\n  ${[...new Set(bad)].join('\n  ')}`);
    }
  });
});
