import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runProcess } from '../../src/engines/process-runner.js';
import { tarGz } from '../support/build-helpers.js';
import { CACHE_DIR, PROJECT_DIR, TOOLS } from '../support/env.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * docker-compose.yml end to end: `docker compose up --build` with two workers, then a
 * build whose pipeline scans (through the Trivy server), signs and pushes, driven over
 * the api's REST port, then `docker compose down -v`. On a machine with no public
 * registry, scripts/compose-images.sh (run by scripts/test.sh) makes the images and
 * writes $STEVEDORE_CACHE_DIR/compose.env, which this test uses as compose-up.sh does.
 */

const PROJECT = `stv-e2e-${process.pid}-${Date.now().toString(36)}`;
const TOKEN = `e2e-admin-token-${Date.now()}`;
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Variables from compose.env (KEY=VALUE lines), absent on machines that use the official images. */
function composeEnv(): Record<string, string> {
  const file = join(CACHE_DIR, 'compose.env');
  if (!existsSync(file)) return {};
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** Runs docker with an argument array (never a shell); resolves with its exit code and output. */
function docker(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('docker', args, { cwd: PROJECT_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: `${stderr}\n${err.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const tail = (text: string, lines = 40) => text.trim().split('\n').slice(-lines).join('\n');
/** The lines of a long build log that say what went wrong, then its end. */
const failure = (text: string) =>
  `${text
    .split('\n')
    .filter((l) => /error|fail|denied|refused/i.test(l))
    .slice(-25)
    .join('\n')}\n...\n${tail(text, 30)}`;
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 1_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (${(last as Error).message})` : ''}`);
}

describe('docker-compose.yml end to end', () => {
  it('comes up with two workers and runs build → scan (Trivy server) → sign → push through it', { timeout: 900_000 }, async (t) => {
    const version = spawnSync('docker', ['compose', 'version', '--short'], { encoding: 'utf8' });
    assert.equal(
      version.status,
      0,
      `the Docker Compose CLI plugin is missing (\`docker compose version\` ` +
        `failed: ${(version.stderr || version.error?.message || '').trim()}). ` +
        'scripts/install-tools.sh builds it (COMPOSE_VERSION in scripts/versions.env) ' +
        'and installs it as a Docker CLI plugin; scripts/test.sh runs it.',
    );

    const local = composeEnv();
    const files = (local.COMPOSE_FILE ?? join(PROJECT_DIR, 'docker-compose.yml')).split(':').filter(Boolean);
    files.push(join(PROJECT_DIR, 'deploy', 'compose', 'signing.yml'));

    // A cosign key pair and keys.json, mounted read-only into the api and the workers
    // (uid 10001 reads them).
    const signingDir = tempDir('stv-e2e-signing-');
    const password = `e2e-${Date.now()}-key-password`;
    await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(signingDir, 'release')], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: password },
    });
    writeFileSync(join(signingDir, 'release.password'), password);
    writeFileSync(
      join(signingDir, 'keys.json'),
      JSON.stringify({
        default: 'release',
        keys: [{ name: 'release', key: '/etc/stevedore/signing/release.key', password_file: '/etc/stevedore/signing/release.password' }],
      }),
    );
    chmodSync(signingDir, 0o755);
    for (const f of ['release.key', 'release.pub', 'release.password', 'keys.json']) chmodSync(join(signingDir, f), 0o644);
    // buildkitd's mutual-TLS certificates, made the way an operator makes them (the client
    // key handed to uid 10001, the workers' user).
    const certsDir = join(tempDir('stv-e2e-certs-'), 'buildkit');
    await runProcess('bash', [join(PROJECT_DIR, 'scripts', 'gen-buildkit-certs.sh'), certsDir], { env: { PATH: process.env.PATH } });
    const redisPassword = randomBytes(24).toString('hex');

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...local,
      STEVEDORE_TOKEN: TOKEN,
      STEVEDORE_SECRETS_KEY: Buffer.alloc(32, 9).toString('base64'),
      TRIVY_TOKEN: `e2e-trivy-token-${Date.now()}`,
      STEVEDORE_SIGNING_DIR: signingDir,
      STEVEDORE_REDIS_PASSWORD: redisPassword,
      STEVEDORE_BUILDKIT_CERTS: certsDir,
      // Loopback and a free port each: nothing collides with other stacks on the host.
      STEVEDORE_HTTP_PUBLISH: '127.0.0.1:',
      STEVEDORE_GRPC_PUBLISH: '127.0.0.1:',
      STEVEDORE_REGISTRY_PUBLISH: '127.0.0.1:',
    };
    delete env.COMPOSE_FILE; // the -f list below says it
    const compose = (args: string[], timeoutMs = 120_000) =>
      docker(['compose', '-p', PROJECT, ...files.flatMap((f) => ['-f', f]), ...args], env, timeoutMs);
    const logs = async (service?: string) => (await compose(['logs', '--no-color', '--tail', '60', ...(service ? [service] : [])])).stdout;

    t.after(async () => {
      const started = Date.now();
      const down = await compose(['down', '-v', '--remove-orphans', '--timeout', '20'], 180_000);
      t.diagnostic(`down -v: ${seconds(started)}`);
      rmSync(signingDir, { recursive: true, force: true });
      rmSync(certsDir, { recursive: true, force: true });
      if (down.code !== 0) throw new Error(`docker compose down -v failed (exit ${down.code}):\n${tail(down.stderr)}`);
    });

    const t0 = Date.now();
    const up = await compose(
      ['--progress', 'plain', 'up', '-d', '--build', '--scale', 'worker=2', '--wait', '--wait-timeout', '240'],
      480_000,
    );
    const hint = local.COMPOSE_FILE
      ? ''
      : '\n(no compose.env: the official images were used; on a machine without Docker Hub run scripts/compose-images.sh)';
    assert.equal(up.code, 0, `docker compose up failed (exit ${up.code}):\n${failure(up.stderr)}${hint}\n--- logs ---\n${await logs()}`);
    t.diagnostic(`up --build --scale worker=2 --wait: ${seconds(t0)}`);

    const portOf = async (service: string, port: number) => {
      const r = await compose(['port', service, String(port)]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim().split('\n')[0]!;
    };
    const api = `http://${await portOf('api', 8080)}`;
    const registry = `http://${await portOf('registry', 5000)}`;

    const t1 = Date.now();
    const ready = await eventually(
      'the api /readyz answering 200',
      async () => {
        const res = await fetch(`${api}/readyz`);
        return res.status === 200 ? ((await res.json()) as any) : undefined;
      },
      120_000,
    );
    t.diagnostic(`api ready: ${seconds(t1)}`);
    // The api is not on the build network and has no BUILDKIT_HOST: builds are the workers'.
    assert.deepEqual(Object.keys(ready.info).sort(), ['buildkit', 'event_loop', 'redis', 'registry']);
    assert.equal(ready.info.buildkit.probe, 'none');

    const workers = await compose(['ps', '--status', 'running', '--format', '{{.Name}}', 'worker']);
    assert.equal(workers.stdout.trim().split('\n').filter(Boolean).length, 2, `two running workers:\n${workers.stdout}${workers.stderr}`);

    const submit = async (body: object) => {
      const res = await fetch(`${api}/v1/jobs`, { method: 'POST', headers: AUTH, body: JSON.stringify(body) });
      const json = (await res.json()) as { id: string };
      assert.equal(res.status, 202, JSON.stringify(json));
      return json.id;
    };
    const finished = (id: string, timeoutMs: number) =>
      eventually(
        `job ${id} finishing`,
        async () => {
          const job = (await (await fetch(`${api}/v1/jobs/${id}`, { headers: AUTH })).json()) as any;
          return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job.state) ? job : undefined;
        },
        timeoutMs,
        1_000,
      );

    // A build context uploaded to the api, built by a worker (they share the state
    // volume) on compose's buildkitd (FROM debian:bookworm-slim through its docker.io
    // mirror, the registry service), scanned against the Trivy server, signed with the
    // mounted key, attested, and copied to a release repository.
    const t2 = Date.now();
    const context = await tarGz({
      Dockerfile: 'FROM debian:bookworm-slim\nCOPY hello.txt /hello.txt\nRUN echo compose > /built-by\n',
      'hello.txt': 'hello from compose\n',
    });
    const upload = await fetch(`${api}/v1/contexts`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/gzip' },
      body: context,
    });
    const uploaded = (await upload.json()) as { digest: string };
    assert.equal(upload.status, 201, JSON.stringify(uploaded));
    const tag = 'registry:5000/e2e/app:1';
    const release = 'registry:5000/release/app:1';
    const buildId = await submit({
      action: 'build',
      context: { upload: uploaded.digest },
      tags: [tag],
      scan: { policy: { ignore_unfixed: true } },
      sign: true,
      push_to: [release],
    });
    const job = await finished(buildId, 300_000);
    t.diagnostic(`build → scan → sign → push job: ${seconds(t2)}`);
    assert.equal(job.state, 'succeeded', `${JSON.stringify(job.error)}\n--- worker logs ---\n${await logs('worker')}`);
    assert.deepEqual(
      job.result.stages.map((s: any) => [s.name, s.state]),
      [
        ['build', 'succeeded'],
        ['scan', 'succeeded'],
        ['gate', 'succeeded'],
        ['sign', 'succeeded'],
        ['attest', 'succeeded'],
        ['push', 'succeeded'],
      ],
    );
    assert.ok(
      job.result.vulnerabilities.some((v: any) => v.id === 'CVE-2011-3374'),
      'findings from the DB',
    );
    assert.equal(job.result.signed.digest, job.result.build.digest);
    assert.deepEqual(job.result.pushed, [{ reference: release, digest: job.result.build.digest }]);

    // The worker's scan report, served by the api from the shared state volume.
    const artifacts = (await (await fetch(`${api}/v1/jobs/${buildId}/artifacts`, { headers: AUTH })).json()) as {
      items: { name: string }[];
    };
    assert.ok(
      artifacts.items.some((a) => a.name === 'sbom.cdx.json'),
      `artifacts: ${JSON.stringify(artifacts)}`,
    );
    const sbom = await fetch(`${api}/v1/jobs/${buildId}/artifacts/sbom.cdx.json`, { headers: AUTH });
    assert.equal(sbom.status, 200);
    assert.match(await sbom.text(), /CycloneDX/);

    // The scan went through the Trivy server: it detected this image's packages (the
    // workers hold no DB; their scans are its clients).
    const trivyLogs = (await compose(['logs', '--no-color', 'trivy'])).stdout;
    assert.match(trivyLogs, /Detecting vulnerabilities/, `the Trivy server saw no scan:\n${tail(trivyLogs)}`);
    const workerDb = await compose([
      'exec',
      '-T',
      'worker',
      'node',
      '-e',
      'process.exit(require("fs").existsSync("/var/lib/stevedore/trivy/db/trivy.db") ? 1 : 0)',
    ]);
    assert.equal(workerDb.code, 0, `the workers keep no vulnerability DB of their own ${workerDb.stderr}`);

    // In the registry (its published port): the copy, and the signature next to the image.
    const manifest = await fetch(`${registry}/v2/release/app/manifests/1`, {
      method: 'HEAD',
      headers: {
        accept:
          'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, ' +
          'application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    assert.equal(manifest.status, 200, 'release/app:1 in the registry');
    assert.equal(manifest.headers.get('docker-content-digest'), job.result.build.digest);
    const tags = (await (await fetch(`${registry}/v2/e2e/app/tags/list`)).json()) as { tags: string[] };
    // cosign v3 stores the signature as an OCI 1.1 referrer; without the registry's
    // referrers API, under the fallback tag sha256-<hex> (cosign v2: sha256-<hex>.sig).
    const sigTag = job.result.build.digest.replace(':', '-');
    assert.ok(
      tags.tags.some((t) => t === sigTag || t === `${sigTag}.sig`),
      `a cosign signature tag for ${job.result.build.digest}: ${tags.tags.join(',')}`,
    );

    // And stevedore verifies it with the same key.
    const verify = await finished(await submit({ action: 'verify', image: release }), 120_000);
    assert.equal(verify.state, 'succeeded', JSON.stringify(verify.error));
    assert.equal(verify.result.verification.verified, true, JSON.stringify(verify.result.verification));

    // The control plane authenticates. Redis: nothing without the password.
    const anonymousRedis = await compose(['exec', '-T', 'redis', 'redis-cli', 'ping']);
    assert.match(anonymousRedis.stdout + anonymousRedis.stderr, /NOAUTH/, 'Redis answers an unauthenticated client');
    // buildkitd: nothing without a client certificate (the worker has buildctl and the CA).
    const buildctl = (...tls: string[]) =>
      compose(['exec', '-T', 'worker', 'buildctl', '--timeout', '5', '--addr', 'tcp://buildkitd:1234', ...tls, 'debug', 'workers']);
    const withCert = await buildctl('--tlsdir', '/etc/stevedore/buildkit-tls');
    assert.equal(withCert.code, 0, `control: the worker's certificate is accepted: ${withCert.stderr}`);
    const noCert = await buildctl('--tlscacert', '/etc/stevedore/buildkit-tls/ca.pem');
    assert.notEqual(noCert.code, 0, 'buildkitd served a client without a certificate');
    // TLS 1.3: the refusal (alert "certificate required") may reach the client as such,
    // or as the connection closing under its first write.
    assert.match(noCert.stderr, /certificate required|bad certificate|handshake|broken pipe|connection reset|EOF/i, noCert.stderr);
    // A build's RUN steps (in buildkitd's network namespace, on the build network only)
    // cannot connect to Redis or the api, by any of their addresses (BuildKit gives RUN
    // steps public resolvers, so names do not resolve either way: addresses are the test).
    const addresses = async (service: string) => {
      const id = (await compose(['ps', '-q', service])).stdout.trim().split('\n')[0]!;
      const out = (
        await docker(
          ['inspect', '-f', '{{range $name, $net := .NetworkSettings.Networks}}{{$name}}={{$net.IPAddress}} {{end}}', id],
          env,
          30_000,
        )
      ).stdout.trim();
      return Object.fromEntries(
        out
          .split(/\s+/)
          .filter(Boolean)
          .map((pair) => [pair.slice(0, pair.indexOf('=')).replace(`${PROJECT}_`, ''), pair.slice(pair.indexOf('=') + 1)]),
      );
    };
    const registryOnBuild = (await addresses('registry')).build;
    assert.ok(registryOnBuild, 'the registry has an address on the build network');
    const targets = [
      ...Object.values(await addresses('redis')).map((ip) => `${ip}/6379`),
      ...Object.values(await addresses('api')).map((ip) => `${ip}/8080`),
    ];
    assert.ok(targets.length >= 2, `addresses of redis and api: ${targets.join(',')}`);
    const connects = (target: string) => `timeout 3 bash -c 'exec 3<>/dev/tcp/${target}'`;
    const probe = [
      'FROM debian:bookworm-slim',
      // Control: the same probe reaches what is on the build network.
      `RUN ${connects(`${registryOnBuild}/5000`)} && echo registry-reachable`,
      ...targets.map((t) => `RUN if ${connects(t)}; then echo "connected to ${t}"; exit 1; fi; echo "no route to ${t}"`),
      '',
    ].join('\n');
    const isolation = await finished(await submit({ action: 'build', dockerfile_inline: probe, no_cache: true }), 180_000);
    assert.equal(isolation.state, 'succeeded', `a RUN step reached Redis or the api: ${JSON.stringify(isolation.error)}`);
    t.diagnostic(`total before teardown: ${seconds(t0)}`);
  });
});
