// A test owns what it checks (issue 21): the tests run on a shared machine, beside other
// runs of themselves and a developer's own `npm start`, so a test that finds processes by
// name, binds or dials a fixed port, or touches containers it did not start can be fooled
// by, or break, something that is not its own. This scans the test sources (comments left
// out) for those patterns. Its own file is skipped: the snippets below break every rule.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const PROJECT_DIR = fileURLToPath(new URL('../../../', import.meta.url));
const SELF = 'test/unit/test-hygiene.test.ts';

/** Integration tests and their support code start real processes and talk to real sockets. */
const talksToTheMachine = (file: string) => file.startsWith('test/integration/') || file.startsWith('test/support/');

/**
 * Loopback ports a test may write literally: 0 (the kernel picks a free one), and 1 (tcpmux)
 * and 9 (discard), the "nothing answers here" fixtures: privileged, unassigned on the
 * machines this runs on, so a connection is refused at once and no test can start
 * answering there by accident (every test server listens on port 0).
 */
const LITERAL_PORTS_OK = new Set([0, 1, 9]);

interface Rule {
  name: string;
  pattern: RegExp;
  /** Where the rule applies (all test files if absent). */
  scope?: (file: string) => boolean;
  /** A match that is fine after all, from its port (the pattern's last group). */
  portOk?: (port: number) => boolean;
  fix: string;
}

const RULES: Rule[] = [
  {
    name: 'process found or killed by name',
    pattern: /\b(?:pgrep|pkill|killall|pidof)\b|\bps\s+(?:aux|-e|-ef|-A)\b/g,
    fix: 'track the pids the test started, or find them by a unique argv marker (test/support/proc.ts pidsWithArgv)',
  },
  {
    name: 'fixed listening port',
    pattern: /\.listen\(\s*(?:\{\s*port:\s*)?(\d+)\b/g,
    portOk: (port) => port === 0,
    fix: 'listen on port 0 and read the port back from server.address()',
  },
  {
    name: 'fixed published container port',
    pattern: /(?:^|[\s'"`])(?:-p|--publish)(?:['"`]\s*,\s*['"`]|[\s=]+)(?:[\d.]+:)?(\d+):\d/g,
    fix: 'publish to a random host port (`-p 5000`, or testcontainers withExposedPorts) and read it back',
  },
  {
    // A unit test passes a config variable to loadConfig() as data; here it reaches a process.
    name: 'fixed port in a process environment',
    pattern: /_PORT['"]?\s*[:=]\s*['"`]?(\d+)\b/g,
    scope: talksToTheMachine,
    portOk: (port) => port === 0 || port > 65535,
    fix: 'give the process a port from freePort() (test/support/stack.ts), or 0',
  },
  {
    // Unit tests name loopback registries as data (`127.0.0.1:5000/team/app` is their stock
    // reference) for pure functions; a unit test's server is held by the listen() rule.
    name: 'fixed loopback port',
    pattern: /(?<![\w.])(?:127(?:\.\d{1,3}){3}|localhost|\[::1\]|\[::ffff:127(?:\.\d{1,3}){3}\]|0\.0\.0\.0|\[::\]):(\d{1,5})(?!\d)/g,
    scope: talksToTheMachine,
    portOk: (port) => LITERAL_PORTS_OK.has(port),
    fix: 'use the address of a server the test started on port 0, or 127.0.0.1:1 for "nothing answers"',
  },
  {
    name: "the Docker engine's other containers",
    pattern:
      /\bdocker\b[\s'"`,([]*(?:ps|container[\s'"`,]+(?:ls|list|prune)|(?:system|image|volume|network|builder)[\s'"`,]+prune)\b|\$\(\s*docker\b|\bancestor=|\.withReuse\(/g,
    fix: 'act on the ids of the containers the test started (container.getId())',
  },
  {
    name: 'fixed container name',
    pattern: /\.withName\(\s*['"]|['"]--name['"]\s*,\s*['"]|--name[\s=]+[\w-]+/g,
    fix: 'let Docker name the container, or add a random part to the name',
  },
];

/**
 * Matches that are safe, each with the reason. `text` is exactly what the rule matched;
 * an entry that no longer matches anything fails the check too, so the list stays short.
 */
const REFUSED = 'an address the service must refuse at submission: the test asserts the 4xx, nothing dials it';
const ALLOWED: { file: string; text: string; why: string }[] = [
  {
    file: 'test/support/netns.ts',
    text: '.listen(80',
    why: 'listens inside a network namespace the test creates, on its own address there: no other process shares those ports',
  },
  { file: 'test/integration/abuse-registry.test.ts', text: '[::1]:5000', why: REFUSED },
  { file: 'test/integration/build-isolation.test.ts', text: '127.0.0.1:6379', why: `${REFUSED} (Redis's port: the SSRF target named)` },
  { file: 'test/integration/build-isolation.test.ts', text: '[::1]:22', why: `${REFUSED} (sshd's port: the SSRF target named)` },
  { file: 'test/integration/repositories.test.ts', text: '127.0.0.2:5000', why: REFUSED },
  { file: 'test/integration/tenant-events.test.ts', text: '[::1]:8080', why: REFUSED },
  { file: 'test/integration/webhooks.test.ts', text: '[::1]:8080', why: REFUSED },
];

interface Hit {
  file: string;
  line: number;
  rule: string;
  text: string;
  fix: string;
}

/** `source` with its comments blanked (newlines kept, so line numbers hold). */
function withoutComments(source: string): string {
  const file = ts.createSourceFile('x.ts', source, ts.ScriptTarget.Latest, true);
  const chars = [...source];
  const blank = (r: ts.CommentRange) => {
    for (let i = r.pos; i < r.end; i++) if (chars[i] !== '\n') chars[i] = ' ';
  };
  const visit = (node: ts.Node) => {
    for (const r of ts.getLeadingCommentRanges(source, node.getFullStart()) ?? []) blank(r);
    for (const r of ts.getTrailingCommentRanges(source, node.getEnd()) ?? []) blank(r);
    for (const child of node.getChildren(file)) visit(child);
  };
  visit(file);
  return chars.join('');
}

/** What the rules find in one file; `file` is its path from the project root (for the scopes). */
function hygieneHits(file: string, source: string): Hit[] {
  const hits: Hit[] = [];
  withoutComments(source)
    .split('\n')
    .forEach((text, i) => {
      for (const rule of RULES) {
        if (rule.scope && !rule.scope(file)) continue;
        for (const m of text.matchAll(rule.pattern)) {
          const port = m[1] === undefined ? NaN : Number(m[1]);
          if (rule.portOk?.(port)) continue;
          hits.push({ file, line: i + 1, rule: rule.name, text: m[0].trim().replace(/^['"`]/, ''), fix: rule.fix });
        }
      }
    });
  return hits;
}

const isAllowed = (h: Hit) => ALLOWED.some((a) => a.file === h.file && a.text === h.text);

function testSources(): string[] {
  return readdirSync(join(PROJECT_DIR, 'test'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `test/${f}`)
    .filter((f) => f !== SELF)
    .sort();
}

describe('test hygiene: no machine-wide state in the tests', () => {
  const files = testSources();
  const hits = files.flatMap((f) => hygieneHits(f, readFileSync(join(PROJECT_DIR, f), 'utf8')));

  it('sees the test sources', () => {
    assert.ok(files.length > 100, `only ${files.length} files`);
    assert.ok(files.includes('test/integration/build.test.ts') && files.includes('test/support/proc.ts'));
  });

  it('finds no process looked up by name, fixed port or foreign container in them', () => {
    const bad = hits.filter((h) => !isAllowed(h));
    if (bad.length)
      assert.fail(
        `${bad.length} machine-wide patterns in the tests (or add a reasoned entry to ALLOWED in ${SELF}):\n  ` +
          bad.map((h) => `${h.file}:${h.line}  ${h.rule}: ${h.text}  → ${h.fix}`).join('\n  '),
      );
  });

  it('has no allow-list entry that matches nothing any more', () => {
    const stale = ALLOWED.filter((a) => !hits.some((h) => h.file === a.file && h.text === a.text));
    assert.deepEqual(stale, []);
  });

  it('catches each pattern in a bad snippet', () => {
    const integration = 'test/integration/x.test.ts';
    const cases: [string, string, string][] = [
      ["execFileSync('pgrep', ['-f', '^sleep 300$'])", integration, 'process found or killed by name'],
      ['spawnSync("pkill", ["-f", "buildctl"])', 'test/unit/x.test.ts', 'process found or killed by name'],
      ["execSync('ps aux | grep sleep')", integration, 'process found or killed by name'],
      ["server.listen(8080, '127.0.0.1')", 'test/unit/x.test.ts', 'fixed listening port'],
      ['await app.listen({ port: 3000 })', 'test/support/x.ts', 'fixed listening port'],
      ["docker('run', '-d', '-p', '5000:5000', image)", integration, 'fixed published container port'],
      ["env: { STEVEDORE_HTTP_PORT: '8080' }", integration, 'fixed port in a process environment'],
      ["const url = 'http://localhost:5000/v2/'", integration, 'fixed loopback port'],
      ['fetch(`http://127.0.0.1:8080/healthz`)', 'test/support/x.ts', 'fixed loopback port'],
      ["redisUrl: 'redis://[::1]:6379/0'", integration, 'fixed loopback port'],
      ["execSync('docker rm -f $(docker ps -q --filter ancestor=registry:2)')", integration, "the Docker engine's other containers"],
      ["execFileSync('docker', ['ps', '-q'])", integration, "the Docker engine's other containers"],
      ["docker('system', 'prune', '-f')", integration, "the Docker engine's other containers"],
      ['new GenericContainer(image).withReuse()', 'test/support/x.ts', "the Docker engine's other containers"],
      ["new GenericContainer(image).withName('stevedore-redis')", 'test/support/x.ts', 'fixed container name'],
      ["docker('run', '--name', 'registry', image)", integration, 'fixed container name'],
    ];
    for (const [snippet, file, rule] of cases)
      assert.deepEqual([...new Set(hygieneHits(file, snippet).map((h) => h.rule))], [rule], snippet);
  });

  it('passes what a test may do', () => {
    const fine = [
      '// pgrep -f would find any run\'s process: we use pidsWithArgv(["sleep", marker])',
      '/** A server on 127.0.0.1:8080 would clash; port 0 it is. */',
      "server.listen(0, '127.0.0.1', resolve)",
      "const s = createServer().listen(0, '127.0.0.1')",
      'const url = `http://127.0.0.1:${port}/hook`',
      "registryAllowedHosts: [hang.address, '127.0.0.1:1']",
      "serverUrl: 'http://127.0.0.1:9'",
      "STEVEDORE_METRICS_PORT: '0'",
      "const child = spawn('ip', ['netns', 'exec', ns, 'sleep', marker])",
      "execFileSync('docker', ['pause', stack.redis.getId()])",
      "compose(['ps', '--status', 'running', 'worker'])",
      "spawnSync('docker', ['rm', '-f', id])",
      "docker(['compose', '-p', PROJECT, 'up'])",
      'new GenericContainer(image).withExposedPorts(5000)',
      "const tag = 'registry.example:5000/team/app:1'",
    ];
    for (const snippet of fine) assert.deepEqual(hygieneHits('test/integration/x.test.ts', snippet), [], snippet);
    // Unit tests name loopback registries as data.
    assert.deepEqual(hygieneHits('test/unit/x.test.ts', "const REG = '127.0.0.1:5000'"), []);
    assert.deepEqual(hygieneHits('test/unit/x.test.ts', "loadConfig({ STEVEDORE_HTTP_PORT: '8080' })"), []);
  });
});
