import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { DockerConfigCredentials } from '../../src/engines/registry/docker-config.js';
import { redactEnv } from '../../src/engines/registry/image-inspector.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { parseChallenge } from '../../src/engines/registry/registry-http.js';

describe('parseChallenge', () => {
  it('reads a Bearer challenge', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'), {
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
    });
    assert.equal(parseChallenge('Basic realm="x"')!.scheme, 'basic');
  });
});

describe('DockerConfigCredentials', () => {
  const config = new DockerConfigCredentials(
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hubpass').toString('base64') },
        'registry.example:5000': { username: 'u', password: 'p' },
      },
    }),
  );
  it('finds Docker Hub and other registries', () => {
    assert.deepEqual(config.lookup('docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(config.lookup('registry.example:5000'), { username: 'u', password: 'p' });
    assert.equal(config.lookup('other.example'), undefined);
  });
});

describe('redactEnv', () => {
  it('hides values of secret-looking names only', () => {
    assert.deepEqual(redactEnv(['PATH=/bin', 'DB_PASSWORD=x', 'GITHUB_TOKEN=y', 'AWS_SECRET_ACCESS_KEY=z', 'EMPTY']), {
      PATH: '/bin',
      DB_PASSWORD: '[redacted]',
      GITHUB_TOKEN: '[redacted]',
      AWS_SECRET_ACCESS_KEY: '[redacted]',
      EMPTY: '',
    });
  });
});

/**
 * The token dance against a small in-process registry stand-in: our auth logic, not a
 * registry's (the real registry is driven in the integration tests).
 */
describe('RegistryClient bearer token auth', () => {
  let server: Server;
  let host: string;
  const seen: { path: string; auth?: string }[] = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ path: req.url!, auth: req.headers.authorization });
      if (req.url!.startsWith('/token')) {
        const basic = Buffer.from('robot:s3cret').toString('base64');
        if (req.headers.authorization !== `Basic ${basic}`) return void res.writeHead(401).end();
        const scope = new URL(req.url!, 'http://x').searchParams.get('scope');
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `tok:${scope}` }));
      }
      if (req.headers.authorization !== 'Bearer tok:repository:team/app:pull') {
        return void res
          .writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="test",scope="repository:team/app:pull"` })
          .end();
      }
      res.writeHead(200, { 'docker-content-digest': 'sha256:' + 'b'.repeat(64) }).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  it('follows the challenge with the configured credentials and retries with the token', async () => {
    const client = new RegistryClient(host, { credentials: { username: 'robot', password: 's3cret' } });
    assert.equal(await client.manifestDigest('team/app', 'v1'), 'sha256:' + 'b'.repeat(64));
    assert.ok(seen.some((s) => s.path.startsWith('/token?') && s.path.includes('scope=repository%3Ateam%2Fapp%3Apull')));
  });

  it('reports wrong credentials as unauthorized', async () => {
    const client = new RegistryClient(host, { credentials: { username: 'robot', password: 'wrong' } });
    await assert.rejects(client.manifestDigest('team/app', 'v1'), (err: { kind: string }) => err.kind === 'unauthorized');
  });
});
