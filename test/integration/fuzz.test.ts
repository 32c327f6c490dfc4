import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startApp } from '../../src/bootstrap.js';
import { isTerminal, type JobState } from '../../src/jobs/job-types.js';
import { CACHE_DIR, PROJECT_DIR, testConfig } from '../support/env.js';
import { startStack, TOKEN, type Stack } from '../support/stack.js';

/**
 * schemathesis (PyPI, pinned in scripts/versions.env, installed by scripts/install-fuzz.sh)
 * against the committed openapi.yaml and the service in process: no 5xx, and every
 * answer's status, content type and body as documented. Phases and checks are in
 * test/fuzz/schemathesis.toml; scripts/fuzz.sh is the longer run against a server.
 *
 * The app runs without the worker role: the jobs the fuzzer gets accepted stay queued
 * (or are cancelled by it), so none of them costs time or makes the server contact an
 * image registry, git host or webhook receiver the generator made up. A worker runs a
 * few jobs of the test's own first, against the local registry, so that job records
 * with results and errors are among the answers the fuzzer checks.
 */
const MAX_EXAMPLES = process.env.STEVEDORE_FUZZ_MAX_EXAMPLES ?? '25';
const SEED = process.env.STEVEDORE_FUZZ_SEED ?? '20261126';
const RUN_TIMEOUT_MS = 8 * 60_000;

const SCHEMATHESIS_VERSION = /^SCHEMATHESIS_VERSION=(\S+)$/m.exec(readFileSync(join(PROJECT_DIR, 'scripts/versions.env'), 'utf8'))?.[1];
const ST = join(CACHE_DIR, 'tools', `schemathesis-${SCHEMATHESIS_VERSION}`, 'bin', 'st');
const FUZZ_DIR = join(PROJECT_DIR, 'test', 'fuzz');

interface RunReport {
  exit_code: number;
  test_cases: { generated: number; with_failures: number; unique_failures: number; errored: number };
  operations: { selected: number; tested: number; errored: number };
  errors: unknown[];
}

/** Jobs that end quickly against the seeded registry: a result, an error, a webhook delivery. */
const seedJobs = (callbackUrl: string) => [
  { action: 'inspect', image: 'debian:bookworm-slim', callback_url: callbackUrl },
  { action: 'inspect', image: 'debian:no-such-tag' },
];

async function runSeedJobs(base: string, callbackUrl: string): Promise<JobState[]> {
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const ids: string[] = [];
  for (const body of seedJobs(callbackUrl)) {
    const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await res.text();
    assert.equal(res.status, 202, text);
    ids.push((JSON.parse(text) as { id: string }).id);
  }
  const deadline = Date.now() + 60_000;
  for (;;) {
    const states = await Promise.all(
      ids.map(async (id) => ((await (await fetch(`${base}/v1/jobs/${id}`, { headers })).json()) as { state: JobState }).state),
    );
    if (states.every(isTerminal)) return states;
    assert.ok(Date.now() < deadline, `seed jobs did not finish within 60 s: ${states.join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('schemathesis against openapi.yaml', () => {
  let stack: Stack;
  let receiver: Server;
  let callbackUrl: string;
  let deliveries = 0;
  let work: string;

  before(async () => {
    assert.ok(
      SCHEMATHESIS_VERSION && existsSync(ST),
      `schemathesis ${SCHEMATHESIS_VERSION ?? '(no SCHEMATHESIS_VERSION in scripts/versions.env)'} ` +
        `is not installed at ${ST}: run scripts/install-fuzz.sh (npm test does)`,
    );
    // Every generated callback_url is rewritten to this receiver (test/fuzz/hooks.py).
    receiver = createServer((req, res) => {
      deliveries++;
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    callbackUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/webhook`;
    stack = await startStack({
      roles: { api: true, worker: false },
      overrides: { webhooks: { ...testConfig().webhooks, allowedHosts: ['127.0.0.1'] } },
    });
    // Closed before the fuzzer starts (app.close(), not stopApp(): that would also mark
    // the api's gRPC health as not serving).
    const worker = await startApp(stack.config, { api: false, worker: true });
    try {
      const states = await runSeedJobs(stack.base, callbackUrl);
      // The worker delivers the webhook after the job ends; wait for it (best effort).
      for (const deadline = Date.now() + 15_000; deliveries === 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
      console.log(`fuzz seed jobs: ${states.join(', ')}; ${deliveries} webhook delivered`);
    } finally {
      await worker.close();
    }
    work = mkdtempSync(join(tmpdir(), 'stevedore-fuzz-'));
  });
  after(async () => {
    await stack?.stop();
    receiver?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const title =
    `finds no server error and no answer that differs from the document ` + `(${MAX_EXAMPLES} examples per operation, seed ${SEED})`;
  it(title, async () => {
    const started = Date.now();
    const deliveriesBefore = deliveries;
    const reportDir = join(work, 'report');
    // An argument array, no shell; cwd is a scratch directory, so schemathesis' own
    // cache directories never land in the checkout.
    const { code, output } = await run(
      ST,
      [
        '--config-file',
        join(FUZZ_DIR, 'schemathesis.toml'),
        'run',
        join(PROJECT_DIR, 'openapi.yaml'),
        '--url',
        stack.base,
        '-H',
        `Authorization: Bearer ${TOKEN}`,
        '--max-examples',
        MAX_EXAMPLES,
        '--seed',
        SEED,
        '--report',
        'json',
        '--report-dir',
        reportDir,
        '--no-color',
      ],
      {
        cwd: work,
        env: {
          ...process.env,
          STEVEDORE_FUZZ_HOOKS: join(FUZZ_DIR, 'hooks.py'),
          STEVEDORE_FUZZ_CALLBACK_URL: callbackUrl,
          PYTHONDONTWRITEBYTECODE: '1',
        },
        timeoutMs: RUN_TIMEOUT_MS,
      },
    );
    const reportFile = existsSync(reportDir) ? readdirSync(reportDir).find((f) => f.startsWith('json-') && f.endsWith('.json')) : undefined;
    assert.ok(reportFile, `schemathesis wrote no JSON report (exit code ${code}):\n${output.slice(-8000)}`);
    const report = JSON.parse(readFileSync(join(reportDir, reportFile), 'utf8')) as RunReport;
    const { generated, unique_failures: failures } = report.test_cases;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `fuzz: ${generated} cases, ${failures} failures, ${report.errors.length} ` +
        `errors; ${report.operations.tested}/${report.operations.selected} ` +
        `operations, ${deliveries - deliveriesBefore} webhooks received, ${seconds} s`,
    );
    assert.equal(code, 0, `schemathesis exited with ${code}:\n${output.slice(-12000)}`);
    assert.equal(failures, 0);
    assert.equal(report.errors.length, 0);
    assert.equal(report.operations.tested, report.operations.selected, 'every selected operation was tested');
    assert.ok(generated > 0, 'schemathesis ran test cases');
  });
});
