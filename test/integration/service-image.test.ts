import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { excludedBy } from '../../src/analysis/dockerfile/rules/dockerignore.js';
import { runProcess } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { waitForJob } from '../support/build-helpers.js';
import { CACHE_DIR, PROJECT_DIR } from '../support/env.js';
import { AUTH, freePort, startStack, type Stack } from '../support/stack.js';
import { makeTrivyCache } from '../support/trivy-db.js';

/** What scripts/service-base-images.sh records: stand-ins for the Dockerfile's base images. */
interface ServiceBaseImages {
  images: Record<string, { repository: string; tag: string; build_arg: string; official: string; layout: string }>;
  npm_cache: { dir: string; key: string };
}

/** The context files the repository's .dockerignore lets through, walked with the analyzer's own matcher. */
function contextFiles(dockerignore: string): string[] {
  const negations = dockerignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1).replace(/^\/+|\/+$/g, ''));
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(PROJECT_DIR, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      const excluded = excludedBy(dockerignore, path);
      if (entry.isDirectory()) {
        // Descend only where something may be re-included (never into node_modules, .git, dist).
        if (!excluded || negations.some((n) => n.startsWith(`${path}/`))) walk(path);
      } else if (!excluded) out.push(path);
    }
  };
  walk('');
  return out.sort();
}

const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

describe('the service image (Dockerfile), built by stevedore itself', () => {
  let stack: Stack;
  let server: any;
  let base: ServiceBaseImages;
  let uploadDigest: string;
  let buildArgs: Record<string, string>;
  const version = (JSON.parse(readFileSync(join(PROJECT_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  const pulled: string[] = [];
  const containers: string[] = [];
  const images: Record<'api' | 'worker', string> = { api: '', worker: '' };
  const job = async (body: object, timeoutMs = 600_000) =>
    waitForJob(server, (await request(server).post('/v1/jobs').set(AUTH).send(body).expect(202)).body.id, undefined, timeoutMs);

  before(async () => {
    const t0 = Date.now();
    const phases: string[] = [];
    const phase = (name: string) => phases.push(`${name} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // The stand-in base images and the offline npm cache (seconds when cached).
    await runProcess('bash', [join(PROJECT_DIR, 'scripts', 'service-base-images.sh')], { timeoutMs: 600_000 });
    base = JSON.parse(readFileSync(join(CACHE_DIR, 'service-base-images.json'), 'utf8')) as ServiceBaseImages;
    phase('base images');
    const cacheDir = await makeTrivyCache();
    stack = await startStack({ buildkit: true, overrides: { trivy: { cacheDir, dbUpdate: false } } });
    server = stack.app.getHttpServer();
    // Into the registry BuildKit uses as its docker.io mirror: library/node:24-bookworm-slim
    // then also answers the Dockerfile's default NODE_IMAGE.
    phase('stack');
    const registry = new RegistryClient(stack.registry.address);
    buildArgs = { VERSION: version, REVISION: 'service-image-test', SOURCE: 'https://example.invalid/stevedore.git' };
    for (const image of Object.values(base.images)) {
      await registry.pushLayout(image.layout, image.repository, image.tag);
      buildArgs[image.build_arg] = `${stack.registry.address}/${image.repository}:${image.tag}`;
    }

    phase('pushed');
    // The repository as a build context, as .dockerignore lets it through, plus the npm
    // cache as .npm-cache/ so the build installs offline.
    const files = contextFiles(readFileSync(join(PROJECT_DIR, '.dockerignore'), 'utf8'));
    assert.ok(files.includes('src/cli/main.ts') && files.includes('package-lock.json'), files.slice(0, 20).join(' '));
    assert.ok(!files.some((f) => /(^|\/)(node_modules|\.git|dist|test)\//.test(f)), 'nothing .dockerignore excludes');
    // The image gets src/ only as tsc output: a non-TypeScript file there would be missing.
    assert.deepEqual(
      files.filter((f) => f.startsWith('src/') && !f.endsWith('.ts')),
      [],
      'files under src/ the Dockerfile does not copy',
    );
    const dir = mkdtempSync(join(tmpdir(), 'stv-svc-ctx-'));
    writeFileSync(join(dir, 'files'), [...files, 'Dockerfile', '.dockerignore'].join('\n') + '\n');
    const tar = join(dir, 'context.tar');
    const cacheName = basename(base.npm_cache.dir);
    await runProcess(
      'tar',
      [
        '-cf',
        tar,
        '-C',
        PROJECT_DIR,
        '-T',
        join(dir, 'files'),
        '-C',
        dirname(base.npm_cache.dir),
        `--transform=s,^${cacheName},.npm-cache,`,
        cacheName,
      ],
      { timeoutMs: 120_000 },
    );
    const upload = await request(server).post('/v1/contexts').set(AUTH).set('content-type', 'application/x-tar').send(readFileSync(tar));
    rmSync(dir, { recursive: true, force: true });
    assert.ok([200, 201].includes(upload.status), JSON.stringify(upload.body)); // 200: the same context is stored already
    uploadDigest = upload.body.digest;
    phase('context uploaded');
    console.log(`service image test setup: ${phases.join(', ')}`);
  });

  after(async () => {
    for (const c of containers) spawnSync('docker', ['rm', '-f', c]);
    for (const ref of pulled) spawnSync('docker', ['rmi', '-f', ref]);
    await stack?.stop();
  });

  it('passes its own optimize with no error or warning (Dockerfile inline, and with its context and .dockerignore)', async () => {
    const dockerfile = readFileSync(join(PROJECT_DIR, 'Dockerfile'), 'utf8');
    for (const body of [{ dockerfile_inline: dockerfile }, { context: { upload: uploadDigest } }]) {
      const optimized = await job({ action: 'optimize', ...body });
      assert.equal(optimized.state, 'succeeded', JSON.stringify(optimized.error));
      const serious = optimized.result.optimization_suggestions.filter((s: any) => s.severity === 'error' || s.severity === 'warning');
      assert.deepEqual(serious, [], JSON.stringify(serious, null, 2));
    }
  });

  it('builds the api and worker targets through the build action, from the local base images', async () => {
    const built = await Promise.all(
      (['api', 'worker'] as const).map((target) =>
        job({
          action: 'build',
          context: { upload: uploadDigest },
          target,
          build_args: buildArgs,
          tags: [`${stack.registry.address}/stevedore/${target}:${version}`],
          cache: false,
        }),
      ),
    );
    for (const [i, target] of (['api', 'worker'] as const).entries()) {
      const b = built[i];
      assert.equal(b.state, 'succeeded', JSON.stringify(b.error));
      images[target] = `${stack.registry.address}/stevedore/${target}@${b.result.image_info.manifest_digest}`;
      docker('pull', '-q', images[target]);
      pulled.push(images[target]);
    }
    const sizes = Object.fromEntries(
      (['api', 'worker'] as const).map((t, i) => [
        t,
        `${(Number(docker('image', 'inspect', '--format', '{{.Size}}', images[t])) / 1e6).toFixed(1)} ` +
          `MB (${(built[i].result.image_info.size_bytes / 1e6).toFixed(1)} MB compressed)`,
      ]),
    );
    console.log(
      `service image sizes (docker image inspect): ${JSON.stringify(sizes)}; ` +
        `build ${built.map((b) => `${b.request.target} ${b.result.build.duration_ms} ms`).join(', ')}`,
    );
  });

  it('runs `stevedore --version` as a non-root user in both, with OCI labels and a HEALTHCHECK', () => {
    for (const target of ['api', 'worker'] as const) {
      assert.ok(images[target], 'built');
      assert.equal(docker('run', '--rm', images[target], '--version'), version);
      assert.equal(
        docker(
          'run',
          '--rm',
          '--entrypoint',
          'node',
          images[target],
          '-e',
          'console.log(process.getuid(), require("os").userInfo().username)',
        ),
        '10001 stevedore',
      );
      const config = JSON.parse(docker('image', 'inspect', '--format', '{{json .Config}}', images[target]));
      assert.equal(config.User, '10001:10001');
      assert.deepEqual(config.Entrypoint, ['node', '/app/bin/stevedore.js']);
      assert.deepEqual(config.Cmd, [target]);
      assert.equal(config.Healthcheck.Test[0], 'CMD');
      assert.equal(config.Labels['org.opencontainers.image.title'], `stevedore-${target}`);
      assert.equal(config.Labels['org.opencontainers.image.version'], version);
      assert.equal(config.Labels['org.opencontainers.image.revision'], 'service-image-test');
      assert.equal(config.Labels['org.opencontainers.image.source'], 'https://example.invalid/stevedore.git');
      assert.equal(config.Labels['org.opencontainers.image.licenses'], 'Apache-2.0');
      assert.ok(config.Labels['org.opencontainers.image.description']);
      // Minimal: no shell, no package manager.
      assert.notEqual(spawnSync('docker', ['run', '--rm', '--entrypoint', 'sh', images[target], '-c', 'true']).status, 0, 'no /bin/sh');
    }
  });

  it('has buildctl, trivy and cosign in the worker and none of them in the api', () => {
    const tools: [string, string[], RegExp][] = [
      ['buildctl', ['--version'], /v0\.32\.2/],
      ['trivy', ['--version'], /Version: 0\.74\.0/],
      ['cosign', ['version'], /v3\.1\.2/],
    ];
    for (const [tool, args, expected] of tools) {
      const inWorker = spawnSync('docker', ['run', '--rm', '--entrypoint', tool, images.worker, ...args], { encoding: 'utf8' });
      assert.equal(inWorker.status, 0, `${tool} in the worker: ${inWorker.stderr}`);
      assert.match(inWorker.stdout + inWorker.stderr, expected);
      const inApi = spawnSync('docker', ['run', '--rm', '--entrypoint', tool, images.api, ...args], { encoding: 'utf8' });
      assert.notEqual(inApi.status, 0, `${tool} must not be in the api image`);
      assert.match(inApi.stderr, /not found|no such file/i);
    }
  });

  it('both become healthy under their own HEALTHCHECK against Redis', async () => {
    // Another Redis database than the stack's: these containers must not take its jobs.
    const env = [
      '-e',
      `REDIS_URL=${stack.redisUrl.replace(/\/0$/, '/1')}`,
      '-e',
      'STEVEDORE_TOKEN=test-admin-token-0123456789',
      '-e',
      `STEVEDORE_SECRETS_KEY=${Buffer.alloc(32, 7).toString('base64')}`,
    ];
    const [http, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
    const run = (target: 'api' | 'worker', extra: string[]) => {
      const id = docker(
        'run',
        '-d',
        '--network',
        'host',
        '--health-interval',
        '1s',
        '--health-start-period',
        '0s',
        ...env,
        ...extra,
        images[target],
      );
      containers.push(id);
      return id;
    };
    const api = run('api', ['-e', `STEVEDORE_HTTP_PORT=${http}`, '-e', `STEVEDORE_GRPC_PORT=${grpc}`]);
    // No buildkitd is needed for the worker to start; its metrics server answers /healthz.
    const worker = run('worker', ['-e', 'BUILDKIT_HOST=tcp://127.0.0.1:1', '-e', `STEVEDORE_METRICS_PORT=${metrics}`]);
    for (const [name, id] of [
      ['api', api],
      ['worker', worker],
    ] as const) {
      const deadline = Date.now() + 60_000;
      let status = '';
      while (Date.now() < deadline) {
        status = docker('inspect', '--format', '{{.State.Health.Status}}', id);
        if (status === 'healthy' || status === 'unhealthy') break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(status, 'healthy', `${name}: ${spawnSync('docker', ['logs', '--tail', '20', id], { encoding: 'utf8' }).stderr}`);
    }
    for (const id of containers.splice(0)) spawnSync('docker', ['rm', '-f', id]);
  });

  it('scans with 0 critical, while the node base image it builds from has the critical zlib CVE', async () => {
    const node = base.images.node!;
    const targets = {
      api: images.api,
      worker: images.worker,
      [`base ${node.repository}:${node.tag}`]: `${stack.registry.address}/${node.repository}:${node.tag}`,
    };
    const results: Record<string, any> = {};
    const jobIds: Record<string, string> = {};
    for (const [name, image] of Object.entries(targets)) {
      const scanned = await job({ action: 'scan', image });
      assert.equal(scanned.state, 'succeeded', JSON.stringify(scanned.error));
      results[name] = scanned.result;
      jobIds[name] = scanned.id;
    }
    console.log(`service image scans: ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.summary])))}`);
    for (const target of ['api', 'worker']) {
      const r = results[target];
      assert.equal(r.summary.critical, 0, JSON.stringify(r.vulnerabilities.filter((v: any) => v.severity === 'CRITICAL')));
      assert.ok(!r.vulnerabilities.some((v: any) => v.package === 'zlib1g'), 'zlib1g is not in the image');
    }
    // The scan sees the Debian packages the image ships (their dpkg records are kept) ...
    const sbom = await request(server)
      .get(`/v1/jobs/${jobIds.api}/artifacts/sbom.cdx.json`)
      .set(AUTH)
      .buffer(true)
      .parse((res, cb) => {
        let d = '';
        res.on('data', (c: Buffer) => (d += c.toString()));
        res.on('end', () => cb(null, d));
      });
    const components = (JSON.parse(sbom.body).components as { name: string; type: string }[]).map((c) => c.name);
    for (const pkg of ['libc6', 'libstdc++6', 'libgcc-s1', 'bullmq']) assert.ok(components.includes(pkg), `${pkg} in the SBOM`);
    assert.ok(!components.includes('zlib1g') && !components.includes('dpkg') && !components.includes('bash'), components.join(' '));
    // ... and the same DB does flag the node base image, so 0 is a real result.
    assert.ok(
      results[`base ${node.repository}:${node.tag}`].vulnerabilities.some(
        (v: any) => v.id === 'CVE-2023-45853' && v.severity === 'CRITICAL',
      ),
    );
  });
});
