import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { checkJobRegistries, assertRegistriesAllowed } from '../../src/admission/registry-policy.js';
import { AppError } from '../../src/errors/app-error.js';
import { RegistryClient, RegistryError } from '../../src/engines/registry/registry-client.js';
import { RegistryGuard } from '../../src/engines/registry/registry-guard.js';
import { readCapped } from '../../src/engines/registry/registry-transport.js';
import { readLayerStream } from '../../src/engines/registry/tar-stream-reader.js';
import { checkManifest, manifestMediaType } from '../../src/engines/registry/manifest-shape.js';
import type { JobRequest } from '../../src/jobs/job-types.js';

const MIRROR = '127.0.0.1:5000';
const config = (extra: { registryMirror?: string; insecureRegistries?: string[]; registryAllowedHosts?: string[] } = {}) => ({
  registryMirror: MIRROR,
  registryListen: '127.0.0.1:5999',
  insecureRegistries: [],
  registryAllowedHosts: [],
  ...extra,
});

async function refusal(request: JobRequest, cfg = config()): Promise<AppError | undefined> {
  try {
    await checkJobRegistries(request, cfg);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    return err;
  }
}

describe('RegistryGuard', () => {
  it('refuses loopback, private, link-local and metadata registries, after resolving names', async () => {
    const guard = new RegistryGuard([MIRROR]);
    for (const registry of [
      '127.0.0.1:6379',
      '127.0.0.1',
      '169.254.169.254',
      '169.254.169.254:80',
      '10.0.0.1:5000',
      '192.168.1.10',
      '172.16.0.1:443',
      '100.64.0.1',
      '0.0.0.0:5000',
      '[::1]:5000',
      '[::ffff:127.0.0.1]:5000',
      '[fe80::1]:5000',
      'localhost:8080',
      'localhost',
    ]) {
      assert.match((await guard.problem(registry)) ?? 'allowed', /loopback, private, link-local or reserved/, registry);
    }
    assert.match((await guard.problem('localhost:8080'))!, /localhost:8080 resolves to (127\.0\.0\.1|::1)/);
  });

  it('allows public addresses, Docker Hub names and configured registries', async () => {
    const guard = new RegistryGuard([MIRROR, '10.1.2.3', 'Registry.Internal:5000', '[::1]:5001']);
    for (const registry of ['93.184.216.34', '93.184.216.34:5000', 'docker.io', MIRROR, '10.1.2.3:1234', '10.1.2.3', '[::1]:5001'])
      assert.equal(await guard.problem(registry), undefined, registry);
    assert.ok(guard.permits('registry.internal', 5000), 'host names compare case-insensitively');
    assert.ok(!guard.permits('registry.internal', 5001), 'a port in the entry is the only port it allows');
    assert.ok(await guard.problem('127.0.0.1:5001'), 'another port of the mirror host is not the mirror');
    assert.ok(await guard.problem('[::1]:5000'));
  });

  it('takes the mirror, else the embedded registry, plus insecure and allowed registries from the configuration', () => {
    const withMirror = RegistryGuard.fromConfig(config({ insecureRegistries: ['10.0.0.9:5000'], registryAllowedHosts: ['192.168.1.1'] }));
    assert.ok(withMirror.permits('127.0.0.1', 5000) && withMirror.permits('10.0.0.9', 5000) && withMirror.permits('192.168.1.1', 443));
    assert.ok(!withMirror.permits('127.0.0.1', 5999), 'the embedded registry address does not count when a mirror is set');
    const embedded = RegistryGuard.fromConfig({ ...config(), registryMirror: undefined });
    assert.ok(embedded.permits('127.0.0.1', 5999));
  });

  it('refuses a literal blocked address at connect time (no lookup happens for those)', () => {
    const guard = new RegistryGuard([MIRROR]);
    assert.match(guard.literalProblem('127.0.0.1', 6379)!, /not configured/);
    assert.equal(guard.literalProblem('127.0.0.1', 5000), undefined);
    assert.equal(guard.literalProblem('93.184.216.34', 443), undefined);
  });
});

describe('checkJobRegistries (submission)', () => {
  const bad = '127.0.0.1:6379/x/y:1';
  it('names the field of every action that names an image', async () => {
    const cases: [JobRequest, string][] = [
      [{ action: 'inspect', image: bad }, 'image'],
      [{ action: 'scan', image: '169.254.169.254/x/y:1' }, 'image'],
      [{ action: 'sign', image: bad }, 'image'],
      [{ action: 'verify', image: bad }, 'image'],
      [{ action: 'push', image: bad, destinations: [`${MIRROR}/ok/y:1`] }, 'image'],
      [{ action: 'push', image: `${MIRROR}/ok/y:1`, destinations: [`${MIRROR}/ok/z:1`, 'localhost:8080/v1/jobs:x'] }, 'destinations.1'],
      [{ action: 'push', image: `${MIRROR}/ok/y:1`, registry: '10.0.0.1:5000' }, 'registry'],
      [{ action: 'build', dockerfile_inline: 'FROM scratch', tags: [`${MIRROR}/ok/y:1`, bad] }, 'tags.1'],
      [{ action: 'build', dockerfile_inline: 'FROM scratch', tags: [`${MIRROR}/ok/y:1`], push_to: ['[::1]:6379/x/y:1'] }, 'push_to.0'],
      [{ action: 'build', dockerfile_inline: 'FROM scratch', registry: '192.168.0.1:5000', image: 'x/y:1' }, 'image'],
      [{ action: 'optimize', image: bad }, 'image'],
    ];
    for (const [request, path] of cases) {
      const err = await refusal(request);
      assert.ok(err, `${JSON.stringify(request)} was accepted`);
      assert.equal(err.kind, 'invalid');
      assert.equal(err.code, 'REGISTRY_FORBIDDEN');
      assert.equal(err.details.path, path, JSON.stringify(request));
      assert.match(err.message, new RegExp(`^${path.replace('.', '\\.')}: `));
    }
  });

  it('accepts the configured registries and public or Docker Hub ones', async () => {
    for (const request of [
      { action: 'inspect', image: 'debian:bookworm-slim' },
      { action: 'inspect', image: `${MIRROR}/library/debian:bookworm-slim` },
      { action: 'push', image: `${MIRROR}/a/b:1`, destinations: ['93.184.216.34/a/b:1'] },
      { action: 'optimize', dockerfile_inline: 'FROM scratch' },
    ] as JobRequest[])
      assert.equal(await refusal(request), undefined, JSON.stringify(request));
    assert.equal(await refusal({ action: 'inspect', image: bad }, config({ registryAllowedHosts: ['127.0.0.1:6379'] })), undefined);
    assert.equal(
      await refusal({ action: 'inspect', image: '10.0.0.1:5000/a/b:1' }, config({ insecureRegistries: ['10.0.0.1:5000'] })),
      undefined,
    );
  });

  it('lists every refused reference in details.refused', async () => {
    await assert.rejects(
      assertRegistriesAllowed(
        [
          { path: 'ref', reference: bad },
          { path: 'other', reference: '10.0.0.1/a:1' },
        ],
        config(),
      ),
      (err: AppError) => {
        assert.deepEqual(
          (err.details.refused as { path: string }[]).map((r) => r.path),
          ['ref', 'other'],
        );
        assert.equal(err.details.registry, '127.0.0.1:6379');
        return true;
      },
    );
  });
});

describe('registry answers', () => {
  it('caps a body without Content-Length while it streams', async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulled += 64 * 1024;
          controller.enqueue(new Uint8Array(64 * 1024));
        },
      },
      { highWaterMark: 0 },
    );
    await assert.rejects(
      readCapped(new Response(body), 1024 * 1024, 'manifest x', 'h'),
      (err: RegistryError) => err.kind === 'protocol' && /limit/.test(err.message),
    );
    assert.ok(pulled <= 1024 * 1024 + 2 * 64 * 1024, `pulled ${pulled} bytes`);
  });

  it('cuts off a layer that streams past its descriptor size', async () => {
    // A well-formed tar of one endless file, so only the size check can stop it.
    const header = Buffer.alloc(512);
    header.write('big.bin', 0);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${(64 * 1024 ** 3).toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    header.write(
      `${header
        .reduce((sum, b) => sum + b, 0)
        .toString(8)
        .padStart(6, '0')}\0 `,
      148,
    );
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          controller.enqueue(pulled === 0 ? new Uint8Array(header) : new Uint8Array(64 * 1024));
          pulled += pulled === 0 ? 512 : 64 * 1024;
        },
      },
      { highWaterMark: 0 },
    );
    const blob = { digest: `sha256:${'a'.repeat(64)}`, size: 1024 * 1024, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
    await assert.rejects(
      readLayerStream(body, blob, () => undefined),
      (err: RegistryError) => err.kind === 'protocol' && /longer than/.test(err.message),
    );
    assert.ok(pulled < 2 * 1024 * 1024, `pulled ${pulled} bytes`);
  });

  it('refuses a manifest of the wrong shape or media type as a registry error', () => {
    for (const value of [
      null,
      [],
      'x',
      { layers: 'no' },
      { layers: [{ digest: 'nope', size: 1, mediaType: 'x' }] },
      { config: { digest: `sha256:${'a'.repeat(64)}`, size: -1, mediaType: 'x' } },
      { manifests: [{ digest: `sha256:${'a'.repeat(64)}`, size: 1, mediaType: 'x', platform: 'linux' }] },
      // A hostile index or image: more entries than any builder makes (work per platform / layer).
      { manifests: Array.from({ length: 129 }, () => ({ digest: `sha256:${'a'.repeat(64)}`, size: 1, mediaType: 'x' })) },
      { layers: Array.from({ length: 1025 }, () => ({ digest: `sha256:${'a'.repeat(64)}`, size: 1, mediaType: 'x' })) },
    ]) {
      assert.throws(
        () => checkManifest(value, 'm'),
        (err: RegistryError) => err.kind === 'protocol',
        JSON.stringify(value),
      );
    }
    const entries = (n: number) => Array.from({ length: n }, () => ({ digest: `sha256:${'a'.repeat(64)}`, size: 1, mediaType: 'x' }));
    assert.doesNotThrow(() => checkManifest({ manifests: entries(128) }, 'm'));
    assert.throws(() => checkManifest({ manifests: entries(129) }, 'm'), /129 manifests, more than the 128 stevedore handles/);
    assert.throws(() => manifestMediaType({}, 'text/html', 'm'), /media type "text\/html"/);
    assert.equal(manifestMediaType({ manifests: [] }, 'application/json', 'm'), 'application/vnd.oci.image.index.v1+json');
    assert.equal(
      manifestMediaType({ mediaType: 'application/vnd.docker.distribution.manifest.v2+json' }, null, 'm'),
      'application/vnd.docker.distribution.manifest.v2+json',
    );
  });
});

describe('RegistryClient against a misbehaving registry (connect-time guard)', () => {
  let evil: Server;
  let elsewhere: Server;
  let hits = 0;
  let evilAddress = '';
  let elsewherePort = 0;
  before(async () => {
    elsewhere = createServer((_req, res) => {
      hits++;
      res.end('{"token":"t"}');
    });
    await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', r));
    elsewherePort = (elsewhere.address() as AddressInfo).port;
    evil = createServer((req, res) => {
      if (req.url!.includes('/redirect/')) res.writeHead(307, { location: `http://127.0.0.1:${elsewherePort}/v2/x/manifests/1` }).end();
      else if (req.url!.includes('/realm/'))
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${elsewherePort}/token",service="x"` }).end();
      else if (req.url!.includes('/html/')) res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    evilAddress = `127.0.0.1:${(evil.address() as AddressInfo).port}`;
  });
  after(() => {
    evil.close();
    elsewhere.close();
  });
  const client = () => new RegistryClient(evilAddress, { guard: new RegistryGuard([evilAddress]) });

  it('does not follow a redirect to another loopback port, nor fetch a token there', async () => {
    await assert.rejects(client().getManifest('redirect/x', '1'), (err: RegistryError) => err.kind === 'forbidden');
    await assert.rejects(client().getManifest('realm/x', '1'), (err: RegistryError) => err.kind === 'forbidden');
    assert.equal(hits, 0);
  });

  it('answers a non-JSON manifest with a registry error', async () => {
    await assert.rejects(
      client().getManifest('html/x', '1'),
      (err: RegistryError) => err.kind === 'protocol' && /not JSON/.test(err.message),
    );
  });
});
