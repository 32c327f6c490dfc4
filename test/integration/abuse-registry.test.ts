import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import request from 'supertest';
import { MAX_MANIFEST_BYTES } from '../../src/engines/registry/registry-client.js';
import { jobsClient } from '../support/grpc-jobs.js';
import { AUTH, freePort, startStack, TOKEN, type Stack } from '../support/stack.js';

/**
 * Issue 14, "The server is a port scanner": a malicious registry stand-in on loopback
 * (configured, as an operator's internal registry would be) that redirects and names
 * token realms elsewhere, lies about its body and serves things that are no manifest;
 * and references to internal addresses that are not configured registries.
 */
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DIGEST = `sha256:${'ab'.repeat(32)}`;
/** What the lying registry writes at a time. */
const WRITE = 16 * 1024;
/**
 * The margin over the cap: one 64 KiB chunk, what a socket read hands over at once
 * (the chunk that crosses the cap is read whole before it can be counted).
 */
const CHUNK = 64 * 1024;

const listen = async <T extends Server | TcpServer>(server: T): Promise<T> => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
};
const portOf = (server: Server | TcpServer) => (server.address() as AddressInfo).port;

describe('a registry that abuses the client (issue 14)', () => {
  let stack: Stack;
  let server: any;
  let evil: Server;
  let elsewhere: Server;
  let evilAddress = '';
  let elsewhereHits = 0;
  /** Bytes the lying registry handed to its socket before the client hung up. */
  let poured: Promise<number> = Promise.resolve(-1);
  const odd: TcpServer[] = [];
  const oddAddresses: string[] = [];

  /** A body without Content-Length, 16 KiB at a time, until the client closes the connection. */
  const pour = (res: ServerResponse): Promise<number> =>
    new Promise((resolve) => {
      let sent = 0;
      let closed = false;
      res.on('close', () => {
        closed = true;
        resolve(sent);
      });
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': DIGEST });
      void (async () => {
        const chunk = Buffer.alloc(WRITE, 0x20); // JSON whitespace: a parser would happily wait for more
        while (!closed && sent < 256 * 1024 * 1024) {
          const flushed = res.write(chunk);
          sent += WRITE;
          if (!flushed)
            await new Promise<void>((resume) => {
              const done = () => {
                res.off('drain', done).off('close', done);
                resume();
              };
              res.on('drain', done).on('close', done);
            });
          // A trickle the client keeps up with, so little sits in socket buffers and the
          // count below is what the client read, give or take the chunk in flight.
          await sleep(2);
        }
        if (!closed) res.end();
      })();
    });

  const route = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (url === '/v2/') return res.writeHead(200).end('{}');
    if (req.method === 'HEAD') return res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': DIGEST }).end();
    if (url.startsWith('/v2/redirect/')) return res.writeHead(307, { location: `http://127.0.0.1:${portOf(elsewhere)}${url}` }).end();
    if (url.startsWith('/v2/realm/'))
      return res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${portOf(elsewhere)}/token",service="evil"` }).end();
    if (url.startsWith('/v2/huge/')) return void (poured = pour(res));
    if (url.startsWith('/v2/html/'))
      return res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>not a manifest</body></html>');
    if (url.startsWith('/v2/wrongtype/'))
      return res
        .writeHead(200, { 'content-type': 'application/vnd.oci.image.config.v1+json' })
        .end('{"architecture":"amd64","os":"linux"}');
    if (url.startsWith('/v2/badshape/'))
      return res.writeHead(200, { 'content-type': OCI_MANIFEST }).end(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { digest: '../../etc/passwd', size: 1, mediaType: 'x' },
          layers: 'none',
        }),
      );
    res.writeHead(404).end();
  };

  before(async () => {
    elsewhere = await listen(
      createHttpServer((_req, res) => {
        elsewhereHits++;
        res.end('{"token":"stolen"}');
      }),
    );
    evil = await listen(createHttpServer(route));
    evilAddress = `127.0.0.1:${portOf(evil)}`;
    // Odd listeners an operator's registry entry might point at: one that resets, one that
    // speaks another protocol (as Redis or SSH would), and two closed ports.
    odd.push(await listen(createTcpServer((s) => s.resetAndDestroy())));
    odd.push(await listen(createTcpServer((s) => s.end('SSH-2.0-OpenSSH_9.2p1\r\n-ERR unknown command\r\n'))));
    oddAddresses.push(...odd.map((s) => `127.0.0.1:${portOf(s)}`), `127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`);
    stack = await startStack({ overrides: { registryAllowedHosts: [evilAddress, ...oddAddresses] } });
    server = stack.app.getHttpServer();
  });
  after(async () => {
    await stack?.stop();
    evil?.closeAllConnections();
    evil?.close();
    elsewhere?.close();
    for (const s of odd) s.close();
  });

  const inspect = (ref: string) => request(server).get('/v1/images/inspect').query({ ref }).set(AUTH);
  const waitForJob = async (id: string) => {
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(100)) {
      const job = (await request(server).get(`/v1/jobs/${id}`).set(AUTH).expect(200)).body;
      if (['succeeded', 'failed', 'timed_out', 'cancelled'].includes(job.state)) return job;
    }
    throw new Error(`job ${id} did not finish`);
  };

  it('does not follow a redirect to another loopback port', async () => {
    const res = await inspect(`${evilAddress}/redirect/app:1`).expect(502);
    assert.equal(res.body.error.code, 'REGISTRY_ERROR');
    assert.equal(elsewhereHits, 0, 'nothing reached the redirect target');
  });

  it('does not fetch a token from a realm on another loopback port', async () => {
    const res = await inspect(`${evilAddress}/realm/app:1`).expect(502);
    assert.equal(res.body.error.code, 'REGISTRY_ERROR');
    assert.equal(elsewhereHits, 0, 'the realm listener got no request');
  });

  it('stops reading a body without Content-Length at the manifest cap', async () => {
    const res = await inspect(`${evilAddress}/huge/app:1`).expect(502);
    assert.equal(res.body.error.code, 'REGISTRY_ERROR');
    assert.match(res.body.error.message, /limit/);
    const sent = await poured;
    console.log(`# bytes read from a lying registry before the cap: ${sent}`);
    // The client reads at most the cap plus the chunk that crosses it; what the trickle had
    // in flight when the connection closed fits in the same margin.
    assert.ok(sent > MAX_MANIFEST_BYTES, `the registry sent ${sent} bytes: the cap was never reached`);
    assert.ok(
      sent <= MAX_MANIFEST_BYTES + CHUNK,
      `the registry got ${sent} bytes out before the client hung up (cap ${MAX_MANIFEST_BYTES})`,
    );
  });

  it('answers REGISTRY_ERROR (502), never a 500, for answers that are not manifests', async () => {
    for (const repo of ['html', 'wrongtype', 'badshape']) {
      const res = await inspect(`${evilAddress}/${repo}/app:1`);
      assert.equal(res.status, 502, `${repo}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'REGISTRY_ERROR', repo);
    }
    const submitted = await request(server)
      .post('/v1/jobs')
      .set(AUTH)
      .send({ action: 'inspect', image: `${evilAddress}/html/app:1` })
      .expect(202);
    const job = await waitForJob(submitted.body.id);
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'REGISTRY_ERROR');
    assert.equal(job.attempts, 1, 'a registry that answers nonsense is not retried');
  });

  it('refuses internal addresses that are not configured registries at submission, naming the field', async () => {
    const redisPort = stack.redis.getMappedPort(6379);
    const apiPort = Number(new URL(stack.base).port);
    const probes = [
      `127.0.0.1:${redisPort}`,
      '169.254.169.254',
      `localhost:${apiPort}`,
      '[::1]:5000',
      '10.0.0.1:5000',
      `127.0.0.1:${await freePort()}`,
    ];
    const answers = new Set<string>();
    for (const registry of probes) {
      const ref = `${registry}/x/y:1`;
      const res = await inspect(ref).expect(400);
      assert.equal(res.body.error.code, 'REGISTRY_FORBIDDEN', registry);
      assert.equal(res.body.error.details.path, 'ref');
      answers.add(
        `${res.status} ${res.body.error.code} ${res.body.error.message.replace(registry, 'R').replace(/ resolves to [^,]+, which/, '')}`,
      );
      const bodies: [object, string][] = [
        [{ action: 'inspect', image: ref }, 'image'],
        [{ action: 'scan', image: ref }, 'image'],
        [{ action: 'sign', image: ref }, 'image'],
        [{ action: 'verify', image: ref }, 'image'],
        [{ action: 'push', image: ref, destinations: [`${stack.registry.address}/ok/y:1`] }, 'image'],
        [
          {
            action: 'push',
            image: `${stack.registry.address}/library/debian:bookworm-slim`,
            destinations: [`${stack.registry.address}/ok/y:1`, ref],
          },
          'destinations.1',
        ],
        [{ action: 'build', dockerfile_inline: 'FROM scratch', tags: [ref] }, 'tags.0'],
        [{ action: 'build', dockerfile_inline: 'FROM scratch', tags: [`${stack.registry.address}/ok/y:1`], push_to: [ref] }, 'push_to.0'],
        [{ action: 'optimize', image: ref }, 'image'],
      ];
      for (const [body, path] of bodies) {
        const refused = await request(server).post('/v1/jobs').set(AUTH).send(body);
        assert.equal(refused.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(refused.body)}`);
        assert.equal(refused.body.error.code, 'REGISTRY_FORBIDDEN');
        assert.equal(refused.body.error.details.path, path, JSON.stringify(body));
      }
    }
    console.log(`# internal probes (${probes.join(', ')}) answered: ${[...answers].join(' | ')}`);
    assert.equal(answers.size, 1, 'every internal address gets the same answer, whatever listens there');
    const grpc = jobsClient(stack.grpcAddress, TOKEN);
    try {
      await assert.rejects(
        grpc.submit({ inspect: { image: `127.0.0.1:${redisPort}/x/y:1` } }),
        (err: { code: status; details: string }) =>
          err.code === status.INVALID_ARGUMENT && /REGISTRY_FORBIDDEN|not configured|loopback/.test(err.details),
      );
    } finally {
      grpc.close();
    }
  });

  it('gives one uniform REGISTRY_UNAVAILABLE for a configured registry that cannot be reached, whatever the cause', async () => {
    const answers = new Map<string, string>();
    for (const registry of oddAddresses) {
      const res = await inspect(`${registry}/x/y:1`);
      answers.set(
        registry,
        `${res.status} ${JSON.stringify({ ...res.body.error, message: res.body.error?.message.replace(registry, 'R') })}`,
      );
    }
    console.log(`# reset / not HTTP / closed / closed answered: ${[...new Set(answers.values())].join(' | ')}`);
    assert.deepEqual(new Set(answers.values()).size, 1, JSON.stringify([...answers]));
    assert.match([...answers.values()][0]!, /^502 .*"code":"REGISTRY_UNAVAILABLE"/);
    assert.doesNotMatch([...answers.values()][0]!, /ECONNREFUSED|ECONNRESET|UND_ERR|socket|parse|HPE_/i);
  });
});
