// bench/trivy-db: what STEVEDORE_TRIVY_DB_UPDATE=auto adds before a scan starts (the
// time TrivyClient.dbUpdatedAt() takes, which applies the update policy), beside the
// baseline of a current DB, for: a due DB with its repository refusing connections or
// silent (a blackhole), no DB with either, and no DB with a loopback registry holding it
// (a real download through trivy). Goal: a scan with a DB present never waits (within a
// few ms of the baseline); with none, a refusing repository is given up at once and a
// silent one within the 3 s probe. Also the admin endpoint's load of the test DB.
// Run: npm run bench:trivy-db   (after `npm test` has built test/trivy-db)
import { cpSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ChildProcessRunner, runProcess } from '../src/engines/process-runner.js';
import { TrivyClient } from '../src/engines/trivy/trivy-client.js';
import { dbTarGz, pushDbArtifact, setDbMetadata } from '../test/support/trivy-db-artifact.js';
import { CACHE_DIR, finish, fmt, freePort, median, startRegistry, tempDir, TOOLS } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const generator = process.env.STEVEDORE_TRIVY_TEST_DB ?? join(CACHE_DIR, 'bin', 'trivy-test-db');

async function testDb(): Promise<string> {
  const dir = tempDir('stv-bench-trivydb-');
  await runProcess(generator, ['-out', dir]);
  return dir;
}

// A port that accepts and never answers: a repository behind a firewall that drops.
const silent = createServer(() => undefined).listen(0, '127.0.0.1');
await new Promise((r) => silent.once('listening', r));
const silentRepo = `127.0.0.1:${(silent.address() as { port: number }).port}/aquasec/trivy-db:2`;
const refusingRepo = `127.0.0.1:${await freePort()}/aquasec/trivy-db:2`;
const registry = await startRegistry();
const source = await testDb();
await pushDbArtifact(registry, 'aquasec/trivy-db', '2', source);
const servingRepo = `${registry}/aquasec/trivy-db:2`;

type Db = 'current' | 'due' | 'none';
async function prepare(db: Db, repository: string): Promise<number> {
  const cacheDir = tempDir('stv-bench-trivycache-');
  if (db !== 'none') {
    cpSync(join(source, 'db'), join(cacheDir, 'db'), { recursive: true });
    if (db === 'due') setDbMetadata(cacheDir, { NextUpdate: '2026-01-02T00:00:00Z', DownloadedAt: '2026-01-01T00:00:00Z' });
  }
  const trivy = new TrivyClient(new ChildProcessRunner(), {
    trivy: TOOLS.trivy,
    cacheDir,
    dbUpdate: 'auto',
    dbRepositories: [repository],
    insecureRegistries: [],
  });
  const t0 = performance.now();
  await trivy.dbUpdatedAt();
  const ms = performance.now() - t0;
  await trivy.db.update().catch(() => undefined); // let a background attempt finish before the next run
  return ms;
}

const rows: [string, Db, string][] = [
  ['current DB (baseline)', 'current', refusingRepo],
  ['due DB, repository refusing', 'due', refusingRepo],
  ['due DB, repository silent', 'due', silentRepo],
  ['no DB, repository refusing', 'none', refusingRepo],
  ['no DB, repository silent', 'none', silentRepo],
  ['no DB, loopback registry (download)', 'none', servingRepo],
];
console.log(`bench/trivy-db: time before a scan starts, median of ${RUNS} (auto mode)`);
for (const [name, db, repository] of rows) {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await prepare(db, repository));
  console.log(`  ${name.padEnd(38)} ${fmt(median(times))} ms`);
}

// The admin endpoint's work (stream, check, rename) for the test DB, beside copying it.
const archive = await dbTarGz(source);
const loads: number[] = [];
const copies: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const trivy = new TrivyClient(new ChildProcessRunner(), {
    trivy: TOOLS.trivy,
    cacheDir: tempDir('stv-bench-load-'),
    dbUpdate: false,
    insecureRegistries: [],
  });
  let t0 = performance.now();
  await trivy.db.load(Readable.from([archive]));
  loads.push(performance.now() - t0);
  t0 = performance.now();
  cpSync(join(source, 'db'), join(tempDir('stv-bench-copy-'), 'db'), { recursive: true });
  copies.push(performance.now() - t0);
}
console.log(
  `  load of the test DB (${archive.length} bytes tar.gz): ${fmt(median(loads))} ms; ` +
    `cp -r of its files (baseline): ${fmt(median(copies))} ms`,
);
silent.close();
await finish();
