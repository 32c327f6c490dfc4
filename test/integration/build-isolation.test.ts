import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { runProcess } from '../../src/engines/process-runner.js';
import { startTestHosts, type TestHosts } from '../support/netns.js';
import { AUTH, blackhole, startStack, type Stack } from '../support/stack.js';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const METADATA = '169.254.169.254';
const NEIGHBOUR = '10.199.77.2';
/** "The outside world": a TEST-NET address in the test's own namespace; builds may reach it. */
const OUTSIDE = '198.51.100.77';

/** A TCP listener on 0.0.0.0 that counts connections and answers a marker (a host service). */
async function hostService(marker: string): Promise<{ port: number; hits: () => number; close(): void }> {
  let hits = 0;
  const server: Server = createServer((s) => {
    hits++;
    s.on('error', () => undefined);
    s.end(`HTTP/1.0 200 OK\r\n\r\n${marker}`);
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  return { port: (server.address() as { port: number }).port, hits: () => hits, close: () => server.close() };
}

/**
 * Hostile tenants against the real sandbox: real buildkitd (bridge network, firewall),
 * registry, Redis and workers; test hosts only in this test's own network namespace.
 */
describe('build isolation between tenants (hostile tenant)', () => {
  let stack: Stack;
  let server: any;
  let hosts: TestHosts;
  let hostSvc: Awaited<ReturnType<typeof hostService>>;
  /** An allowed host whose page is not a git repository (it plays the registry catalog). */
  let catalog: Awaited<ReturnType<typeof hostService>>;
  /** An allowed host that accepts connections and never answers. */
  let hang: Awaited<ReturnType<typeof blackhole>>;
  const keys: Record<string, string> = {};
  const submit = (key: string, body: object) => request(server).post('/v1/jobs').set(bearer(key)).send(body);
  const finish = async (key: string, body: object): Promise<any> => {
    const res = await submit(key, body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const deadline = Date.now() + 300_000;
    for (;;) {
      const job = (await request(server).get(`/v1/jobs/${res.body.id}`).set(bearer(key)).expect(200)).body;
      if (!['queued', 'running'].includes(job.state)) return job;
      if (Date.now() > deadline) throw new Error(`job ${job.id} still ${job.state}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const logs = async (key: string, id: string): Promise<string[]> => {
    const { items } = (await request(server).get(`/v1/jobs/${id}/events?follow=false`).set(bearer(key)).expect(200)).body as {
      items: { type: string; data: { line?: string } }[];
    };
    return items.filter((e) => e.type === 'log').map((e) => e.data.line!);
  };
  const tag = (tenant: string, name: string) => `${stack.registry.address}/${tenant}/${name}`;

  before(async () => {
    hosts = await startTestHosts([
      { address: METADATA, gateway: '169.254.169.1', body: 'METADATA-CREDENTIALS' },
      { address: NEIGHBOUR, gateway: '10.199.77.1', body: 'NEIGHBOUR-SECRET' },
      { address: OUTSIDE, gateway: '198.51.100.1', body: 'OUTSIDE-OK' },
    ]);
    hostSvc = await hostService('HOST-SERVICE-SECRET');
    catalog = await hostService('{"repositories":["team-a/private-catalog-entry"]}');
    hang = await blackhole();
    stack = await startStack({
      buildkit: true,
      listenHost: '0.0.0.0',
      overrides: { concurrency: { build: 2 }, buildAllowedHosts: [`127.0.0.1:${catalog.port}`, hang.address] },
    });
    server = stack.app.getHttpServer();
    for (const tenant of ['team-a', 'team-b']) {
      const body = {
        tenant,
        scopes: ['jobs:read', 'jobs:write', 'secrets:write'],
        rate_limit_per_minute: 100_000,
        repositories: [`${stack.registry.address}/${tenant}/*`],
      };
      keys[tenant] = (await request(server).post('/v1/api-keys').set(AUTH).send(body).expect(201)).body.key;
    }
  });
  after(async () => {
    await stack?.stop();
    hostSvc?.close();
    catalog?.close();
    hang?.close();
    await hosts?.stop();
  });

  it('the stand-ins answer from the host, so a refusal below is the sandbox', async () => {
    for (const [address, body] of [
      [METADATA, 'METADATA-CREDENTIALS'],
      [NEIGHBOUR, 'NEIGHBOUR-SECRET'],
      [OUTSIDE, 'OUTSIDE-OK'],
    ] as const) {
      assert.equal(await (await fetch(`http://${address}/`, { signal: AbortSignal.timeout(5_000) })).text(), body);
    }
  });

  it('a RUN step reaches nothing on the host, the control plane, the metadata address or a private neighbour', async () => {
    const hostIps = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i && i.family === 'IPv4' && !i.internal)
      .map((i) => i!.address);
    const gateway = stack.buildkitd!.network.subnet.replace(/\.0\/24$/, '.1');
    const ports = {
      api: Number(new URL(stack.base).port),
      grpc: Number(stack.grpcAddress.split(':')[1]),
      redis: stack.redis.getMappedPort(6379),
      registry: Number(stack.registry.address.split(':')[1]),
      service: hostSvc.port,
    };
    const targets = [
      ...[gateway, ...hostIps, '127.0.0.1'].flatMap((h) => Object.values(ports).map((p) => `${h}:${p}`)),
      `${METADATA}:80`,
      `${NEIGHBOUR}:80`,
    ];
    const probe = (t: string) =>
      `if timeout 4 bash -c 'exec 3<>/dev/tcp/${t.replace(':', '/')}; printf "GET / ` +
      `HTTP/1.0\\r\\n\\r\\n" >&3; head -c 200 <&3' >/tmp/out 2>/dev/null; then echo ` +
      `"REACHED ${t} $(tr -d '\\r\\n' </tmp/out | head -c 80)"; else echo "BLOCKED ${t}"; fi`;
    // All probes at once (each refusal takes about a second), then wait for every one.
    const probes = [...targets, `${OUTSIDE}:80`].map((t, i) => `(${probe(t).replaceAll('/tmp/out', `/tmp/out${i}`)}) &`).join(' ');
    const dockerfile = `FROM debian:bookworm-slim\nRUN ${probes} wait\n`;
    const job = await finish(keys['team-a']!, { action: 'build', dockerfile_inline: dockerfile, no_cache: true });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const lines = (await logs(keys['team-a']!, job.id)).filter((l) => /^(REACHED|BLOCKED) /.test(l));
    const reached = lines.filter((l) => l.startsWith('REACHED') && !l.includes(`${OUTSIDE}:80`));
    assert.deepEqual(reached, [], 'paths from inside a build that answered');
    assert.equal(lines.filter((l) => l.startsWith('BLOCKED')).length, targets.length);
    // The control: the same step did reach the "outside world", so egress itself works.
    assert.ok(
      lines.some((l) => l.startsWith(`REACHED ${OUTSIDE}:80 `) && l.endsWith('OUTSIDE-OK')),
      lines.join('\n'),
    );
    assert.equal(hostSvc.hits(), 0);
    assert.equal(hosts.hits.get(METADATA), 1, 'only the host-side check above reached the metadata stand-in');
    console.log(`# sandbox probes: ${targets.length} paths tried from a RUN step, ${reached.length} answered`);
  });

  it("a step that mounts a secret is never served from another tenant's cache", async () => {
    await request(server).put('/v1/secrets/npm_token').set(bearer(keys['team-a']!)).send({ value: 'token-of-team-a' }).expect(201);
    await request(server).put('/v1/secrets/npm_token').set(bearer(keys['team-b']!)).send({ value: 'token-of-team-b' }).expect(201);
    // Log lines mask mounted secret values (***), so the step prints the file's hash instead.
    const dockerfile =
      'FROM debian:bookworm-slim\nRUN --mount=type=secret,id=npm_token,env=NPM_TOKEN echo "token=$NPM_TOKEN" > /leak.txt\n' +
      'RUN sha256sum /leak.txt | cut -c1-64\n';
    const hashOf = (token: string) => createHash('sha256').update(`token=${token}\n`).digest('hex');
    const build = (tenant: string) =>
      finish(keys[tenant]!, {
        action: 'build',
        dockerfile_inline: dockerfile,
        secrets: ['npm_token'],
        tags: [tag(tenant, 'leak:1')],
        provenance: false,
      });
    const a = await build('team-a');
    assert.equal(a.state, 'succeeded', JSON.stringify(a.error));
    const b = await build('team-b');
    assert.equal(b.state, 'succeeded', JSON.stringify(b.error));
    const runSteps = (job: any) => job.result.build.steps.filter((s: any) => /RUN/.test(s.name));
    assert.deepEqual(
      runSteps(b).map((s: any) => s.cached),
      [false, false],
      'cross-tenant cache hits',
    );
    const bLogs = await logs(keys['team-b']!, b.id);
    assert.ok(bLogs.includes(hashOf('token-of-team-b')), "B's image holds B's secret");
    assert.ok(!bLogs.includes(hashOf('token-of-team-a')) && !JSON.stringify(bLogs).includes('token-of-team-a'), "and not A's");
    // The same tenant's rebuild is still served from its cache.
    const again = await build('team-a');
    assert.deepEqual(
      runSteps(again).map((s: any) => s.cached),
      [true, true],
      'same-tenant rebuild is cached',
    );
  });

  it('a cache mount written by one tenant is empty for another (and kept for the writer)', async () => {
    // No no_cache here: BuildKit gives a --no-cache build fresh cache mounts. Each Dockerfile is distinct instead.
    const write = 'FROM debian:bookworm-slim\nRUN --mount=type=cache,target=/root/.cache/pip echo planted-by-a > /root/.cache/pip/marker\n';
    const read = (n: string) =>
      `FROM debian:bookworm-slim\nRUN --mount=type=cache,target=/root/.cache/pip ` +
      `echo "read-${n}: $(cat /root/.cache/pip/marker 2>/dev/null || echo none)"\n`;
    assert.equal((await finish(keys['team-a']!, { action: 'build', dockerfile_inline: write })).state, 'succeeded');
    const b = await finish(keys['team-b']!, { action: 'build', dockerfile_inline: read('b') });
    assert.ok((await logs(keys['team-b']!, b.id)).includes('read-b: none'));
    // An explicit id is namespaced too.
    const byId = await finish(keys['team-b']!, {
      action: 'build',
      dockerfile_inline: read('b2').replace('type=cache,', 'type=cache,id=/root/.cache/pip,'),
    });
    assert.ok((await logs(keys['team-b']!, byId.id)).includes('read-b2: none'));
    const a = await finish(keys['team-a']!, { action: 'build', dockerfile_inline: read('a') });
    assert.ok((await logs(keys['team-a']!, a.id)).includes('read-a: planted-by-a'));
  });

  it('refuses the build args that would lift the isolation, and ignores `# syntax=` frontends', async () => {
    for (const name of ['BUILDKIT_CACHE_MOUNT_NS', 'BUILDKIT_SANDBOX_HOSTNAME', 'BUILDKIT_SYNTAX']) {
      const res = await submit(keys['team-b']!, {
        action: 'build',
        dockerfile_inline: 'FROM debian:bookworm-slim\n',
        build_args: { [name]: 'stv-x' },
      }).expect(400);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      assert.match(res.body.error.details.fields[0].path, /^build_args/);
    }
    const job = await finish(keys['team-b']!, {
      action: 'build',
      dockerfile_inline: '# syntax=registry.invalid/evil/frontend:1\nFROM debian:bookworm-slim\nRUN echo built-in-frontend\n',
      no_cache: true,
    });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
  });

  it("ADD of a loopback, metadata or private URL is refused by the daemon's firewall; the outside is not", async () => {
    const before = { meta: hosts.hits.get(METADATA), neighbour: hosts.hits.get(NEIGHBOUR) };
    for (const url of [
      `http://127.0.0.1:${hostSvc.port}/x`,
      `http://localhost:${Number(new URL(stack.base).port)}/v1/jobs`,
      `http://${METADATA}/latest/`,
      `http://${NEIGHBOUR}/`,
    ]) {
      const job = await finish(keys['team-b']!, {
        action: 'build',
        dockerfile_inline: `FROM debian:bookworm-slim\nADD ${url} /fetched\n`,
        no_cache: true,
      });
      assert.equal(job.state, 'failed', url);
      assert.ok(
        !/SECRET|CREDENTIALS|items/.test(JSON.stringify(job.error)),
        `no fetched content in the error: ${JSON.stringify(job.error)}`,
      );
    }
    assert.equal(hostSvc.hits(), 0);
    assert.deepEqual({ meta: hosts.hits.get(METADATA), neighbour: hosts.hits.get(NEIGHBOUR) }, before);
    const ok = await finish(keys['team-b']!, {
      action: 'build',
      dockerfile_inline: `FROM debian:bookworm-slim\nADD http://${OUTSIDE}/ /fetched\nRUN cat /fetched\n`,
      no_cache: true,
    });
    assert.equal(ok.state, 'succeeded', JSON.stringify(ok.error));
  });

  it('git contexts at loopback, private or metadata addresses are refused at submission', async () => {
    const registryPort = stack.registry.address.split(':')[1];
    for (const git of [
      `http://127.0.0.1:${registryPort}/v2/_catalog`,
      'https://127.0.0.1:6379/x.git',
      'http://localhost/x.git',
      `http://${METADATA}/x.git`,
      `https://${NEIGHBOUR}/x.git`,
      'ssh://git@[::1]:22/x.git',
      'git@127.0.0.1:x.git',
    ]) {
      const res = await submit(keys['team-b']!, { action: 'build', context: { git } }).expect(400);
      assert.equal(res.body.error.details.fields[0].path, 'context.git', git);
    }
  });

  it("a remote context's failure never quotes what was fetched", async () => {
    const job = await finish(keys['team-b']!, { action: 'build', context: { git: `http://127.0.0.1:${catalog.port}/v2/_catalog` } });
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'CONTEXT_FETCH_FAILED');
    assert.ok(catalog.hits() > 0, 'the allowed host was fetched');
    const events = (await request(server).get(`/v1/jobs/${job.id}/events?follow=false`).set(bearer(keys['team-b']!)).expect(200)).text;
    assert.ok(!`${JSON.stringify(job)}${events}`.includes('private-catalog-entry'), 'fetched content in the job or its events');
  });

  it('a git fetch that hangs ends at the job time limit with a clear code', async () => {
    const job = await finish(keys['team-b']!, { action: 'build', context: { git: `http://${hang.address}/repo.git` }, timeout_seconds: 5 });
    assert.equal(job.state, 'timed_out');
    assert.equal(job.error.code, 'TIMED_OUT');
  });

  it('the installed ruleset refuses what the probes cannot exercise (other private ranges, the host LAN, IPv6)', async () => {
    const v4 = (await runProcess('iptables', ['-w', '-S', 'STV-BUILD-FWD'])).stdout;
    for (const net of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10', '127.0.0.0/8'])
      assert.match(v4, new RegExp(`-d ${net.replace(/\./g, '\\.')} -j REJECT`), net);
    assert.match((await runProcess('iptables', ['-w', '-S', 'STV-BUILD-IN'])).stdout, /-A STV-BUILD-IN -j REJECT/);
    assert.match((await runProcess('ip6tables', ['-w', '-S', 'STV-BUILD-IN'])).stdout, /-A STV-BUILD-IN -j REJECT/);
    const daemon = (await runProcess('iptables', ['-w', '-S', 'OUTPUT'])).stdout;
    assert.match(daemon, new RegExp(`--gid-owner ${stack.buildkitd!.network.gid} -j STV-BKD-${stack.buildkitd!.network.index}`));
  });
});
