import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import request from 'supertest';
import { waitForJob } from '../support/build-helpers.js';
import { PROJECT_DIR } from '../support/env.js';
import { AUTH, startStack, TOKEN, type Stack } from '../support/stack.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { ACTIONS } from '../../src/jobs/job-types.js';
import { queueName } from '../../src/jobs/queues.js';

const CHROMIUM = process.env.STEVEDORE_CHROMIUM ?? '/usr/bin/chromium';
// The README's picture: rewritten only when asked, so a test run leaves the tree clean.
const SCREENSHOT = process.env.STEVEDORE_UPDATE_SCREENSHOTS
  ? join(PROJECT_DIR, 'docs', 'dashboard.png')
  : join(tmpdir(), `stv-dashboard-${process.pid}.png`);
// Lenient gate: the test DB gives the base image a CRITICAL, and the build must succeed.
const LENIENT = { max_critical: 100, max_high: 100 };

/**
 * The operator's dashboard in a real headless Chromium against the real stack (Redis,
 * seeded registry, buildkitd, Trivy with the test DB): bull-board behind the admin
 * login, and the job page with its live state, event log and charts.
 */
describe('dashboard: bull-board and the job page in headless Chromium', () => {
  let stack: Stack;
  let server: any;
  let browser: Browser;
  let tenantKey: string;

  before(async () => {
    stack = await startStack({ buildkit: true, overrides: { trivy: { cacheDir: await makeTrivyCache(), dbUpdate: false } } });
    server = stack.app.getHttpServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    tenantKey = (
      await request(server)
        .post('/v1/api-keys')
        .set(AUTH)
        .send({ tenant: 'team-dash', scopes: ['jobs:read', 'jobs:write'] })
        .expect(201)
    ).body.key;
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const submitLogin = async (page: Page, token: string) => {
    await page.fill('#token', token);
    await page.click('#submit');
  };
  /**
   * A fresh browser context logged in as the operator. `problems` collects script errors
   * and console errors (a CSP violation is one), which the pages must never produce.
   */
  const operator = async (): Promise<{ context: BrowserContext; page: Page; problems: string[] }> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    // Only on the job pages: bull-board's page reports the (blocked) font stylesheet it links.
    const onJobPage = () => page.url().includes('/ui/jobs/');
    page.on('pageerror', (err) => onJobPage() && problems.push(err.message));
    page.on('console', (msg) => {
      if (onJobPage() && msg.type() === 'error' && !/status of 404/.test(msg.text())) problems.push(msg.text());
    });
    await page.goto(`${stack.base}/ui/login?next=/admin/queues`);
    await Promise.all([page.waitForURL(`${stack.base}/admin/queues`), submitLogin(page, TOKEN)]);
    return { context, page, problems };
  };
  const fetchIn = (page: Page, path: string, init: { method?: string; headers?: Record<string, string> } = {}) =>
    page.evaluate(async ([p, i]) => (await fetch(p, i as RequestInit)).status, [path, init] as const);

  it('keeps /admin/queues for the operator: login redirect, bull-board after the admin login, never for an API key', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const offSite: string[] = [];
    const blocked: string[] = [];
    page.on('request', (r) => new URL(r.url()).origin !== stack.base && offSite.push(r.url()));
    page.on('requestfailed', (r) => /csp|BLOCKED_BY_CSP/i.test(r.failure()?.errorText ?? '') && blocked.push(r.url()));
    await page.goto(`${stack.base}/admin/queues`);
    assert.equal(page.url(), `${stack.base}/ui/login?next=%2Fadmin%2Fqueues`);
    assert.equal(await fetchIn(page, '/admin/queues/api/queues', { headers: { accept: 'application/json' } }), 401);
    assert.equal(await fetchIn(page, '/admin/queues/api/queues', { headers: { authorization: `Bearer ${tenantKey}` } }), 403);
    assert.equal(
      await fetchIn(page, '/ui/api/jobs/00000000-0000-4000-8000-000000000000', { headers: { authorization: `Bearer ${tenantKey}` } }),
      403,
    );

    // A tenant's API key is refused at the login form and gets no session.
    await submitLogin(page, tenantKey);
    await page.waitForSelector('#message:has-text("API keys cannot open it")');
    assert.deepEqual(
      (await context.cookies()).map((c) => c.name),
      [],
    );
    await page.goto(`${stack.base}/admin/queues`);
    assert.match(page.url(), /\/ui\/login\?next=/);

    // The admin token: an HttpOnly, SameSite=Strict session and bull-board with every action queue.
    await Promise.all([page.waitForURL(`${stack.base}/admin/queues`), submitLogin(page, TOKEN)]);
    const [cookie] = await context.cookies();
    assert.deepEqual([cookie?.name, cookie?.httpOnly, cookie?.sameSite], ['stv_session', true, 'Strict']);
    for (const action of ACTIONS) await page.getByText(queueName(action), { exact: true }).first().waitFor({ timeout: 30_000 });
    // Its content security policy keeps the browser on this origin (bull-board links Google Fonts).
    assert.deepEqual(offSite, blocked);
    // The cookie only authorises reads: a state change through it is refused.
    assert.equal(await fetchIn(page, `/admin/queues/api/queues/${queueName('build')}/pause`, { method: 'PUT' }), 401);
    assert.equal(await fetchIn(page, '/admin/queues/api/queues'), 200);
    // A forged cookie gets nothing.
    await context.addCookies([{ name: 'stv_session', value: `${cookie!.value.split('.')[0]}.forged`, url: stack.base }]);
    assert.equal(await fetchIn(page, '/admin/queues/api/queues'), 401);

    // The admin token as a bearer header works without a session (scripts).
    await request(server).get('/admin/queues/api/queues').set(AUTH).expect(200);
    const board = await request(server).get('/admin/queues').set(AUTH).expect(200);
    assert.match(board.headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    await context.close();
  });

  it('follows a build with a scan stage live: state, event log, one bar per layer and the severity chart', async () => {
    const { context, page, problems } = await operator();
    const tag = `${stack.registry.address}/team/dashboard:1`;
    const dockerfile = [
      'FROM debian:bookworm-slim',
      // An old lodash for the scan, and output for the event log.
      `RUN mkdir -p /app/node_modules/lodash && printf '{"name":"lodash","version":"4.17.20","license":"MIT"}' ` +
        `> /app/node_modules/lodash/package.json && echo dashboard-step-output`,
      'RUN echo second layer > /app/notes.txt',
    ].join('\n');
    const id = (
      await request(server)
        .post('/v1/jobs')
        .set(AUTH)
        .send({ action: 'build', dockerfile_inline: dockerfile, tags: [tag], scan: { policy: LENIENT } })
        .expect(202)
    ).body.id;
    await page.goto(`${stack.base}/ui/jobs/${id}`);
    // Seen while it runs, then the terminal state arrives over the stream without a reload.
    await page.waitForSelector('#job-state[data-state="running"]', { timeout: 120_000 });
    await page.waitForSelector('#job-state[data-state="succeeded"]', { timeout: 300_000 });
    const job = await waitForJob(server, id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));

    assert.equal(await page.textContent('#job-id'), id);
    assert.equal(await page.textContent('#job-action'), 'build');
    assert.equal(await page.textContent('#job-tenant'), 'default');
    const lines = await page.locator('#events li').allTextContents();
    for (const state of ['queued', 'running', 'succeeded'])
      assert.ok(
        lines.some((l) => /state/.test(l) && l.endsWith(state)),
        `state ${state} in ${lines.join('\n')}`,
      );
    assert.ok(
      lines.some((l) => l.includes('dashboard-step-output')),
      'the RUN output is in the log',
    );

    const layers = job.result.image_info.layers as { size_bytes: number }[];
    assert.ok(layers.length >= 3);
    await page.waitForSelector('#layer-chart rect.bar');
    assert.equal(await page.locator('#layer-chart rect.bar').count(), layers.length);
    assert.deepEqual(
      await page.locator('#layer-chart rect.bar').evaluateAll((bars) => bars.map((b) => Number(b.getAttribute('data-size')))),
      layers.map((l) => l.size_bytes),
    );
    await assertSeverityChart(page, job.result.summary);
    assert.ok(job.result.summary.high >= 1 && job.result.summary.critical >= 1, JSON.stringify(job.result.summary));

    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(statSync(SCREENSHOT).size > 10_000);
    if (!process.env.STEVEDORE_UPDATE_SCREENSHOTS) rmSync(SCREENSHOT);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it("shows the operator another tenant's scan job, and answers 404 for a job that does not exist", async () => {
    const tenant = { authorization: `Bearer ${tenantKey}` };
    const image = `${stack.registry.address}/library/debian:bookworm-slim`;
    const id = (await request(server).post('/v1/jobs').set(tenant).send({ action: 'scan', image, policy: LENIENT }).expect(202)).body.id;
    let job: any;
    for (
      const deadline = Date.now() + 300_000;
      !['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job?.state);
      await new Promise((r) => setTimeout(r, 250))
    ) {
      assert.ok(Date.now() < deadline, 'scan did not finish');
      job = (await request(server).get(`/v1/jobs/${id}`).set(tenant).expect(200)).body;
    }
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));

    const { context, page, problems } = await operator();
    await page.goto(`${stack.base}/ui/jobs/${id}`);
    await page.waitForSelector('#job-state[data-state="succeeded"]');
    assert.equal(await page.textContent('#job-tenant'), 'team-dash');
    assert.equal(await page.textContent('#job-action'), 'scan');
    await page.waitForSelector('#severity-chart rect.bar');
    await assertSeverityChart(page, job.result.summary);
    assert.equal(await page.locator('#layer-chart rect.bar').count(), job.result.image_info.layers.length);
    assert.ok((await page.locator('#events li').allTextContents()).some((l) => l.includes('scanning')));
    assert.match(
      (await page.textContent('#severity-total')) ?? '',
      new RegExp(`^${job.result.vulnerabilities.length} findings?, ${job.result.summary.fixable} fixable$`),
    );
    assert.deepEqual(problems, []);

    const missing = await page.goto(`${stack.base}/ui/jobs/00000000-0000-4000-8000-000000000000`);
    assert.equal(missing?.status(), 404);
    assert.match((await page.textContent('h2')) ?? '', /No such job/);

    // Logging out ends the session in this browser.
    await page.goto(`${stack.base}/ui/jobs/${id}`);
    await Promise.all([page.waitForURL(/\/ui\/login$/), page.click('#logout')]);
    await page.goto(`${stack.base}/ui/jobs/${id}`);
    assert.match(page.url(), /\/ui\/login\?next=/);
    await context.close();
  });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request from a chosen loopback address (127.0.0.N): the server sees another client. */
function from(localAddress: string, base: string, path: string, init: { method?: string; cookie?: string; body?: object } = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const body = init.body ? JSON.stringify(init.body) : undefined;
    const req = httpRequest(
      new URL(path, base),
      {
        method: init.method ?? 'GET',
        localAddress,
        headers: {
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...(init.cookie ? { cookie: init.cookie } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The login limit and server-side sessions against the real service and Redis, with two
 * api processes on the same Redis (what holds in one must hold in the other).
 */
describe('dashboard login: rate-limited per address, sessions revocable on the server', () => {
  let stack: Stack;
  let other: string;

  before(async () => {
    stack = await startStack();
    other = (await stack.startApp({ api: true, worker: false })).base;
  });
  after(async () => stack?.stop());

  const login = (address: string, base: string, token: string) => from(address, base, '/ui/login', { method: 'POST', body: { token } });
  const cookieOf = (a: Answer) => String(a.headers['set-cookie']).split(';')[0]!;
  const board = (address: string, base: string, cookie: string) => from(address, base, '/admin/queues/api/queues', { cookie });

  it('5 attempts a minute per address, counted across processes, then 429 with Retry-After even for the right token', async () => {
    const ip = '127.0.0.11';
    for (const base of [stack.base, stack.base, stack.base, other, other]) assert.equal((await login(ip, base, 'wrong-token')).status, 401);
    const limited = await login(ip, stack.base, TOKEN);
    assert.equal(limited.status, 429, limited.body);
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${String(limited.headers['retry-after'])}`);
    assert.equal(JSON.parse(limited.body).error.code, 'RATE_LIMITED');
    assert.equal((await login(ip, other, TOKEN)).status, 429, 'the other process sees the same count');
    // Another address is not held up by this one.
    assert.equal((await login('127.0.0.12', other, TOKEN)).status, 200);
  });

  it('a successful login clears its address count', async () => {
    const ip = '127.0.0.13';
    for (let i = 0; i < 4; i++) assert.equal((await login(ip, stack.base, 'wrong-token')).status, 401);
    assert.equal((await login(ip, stack.base, TOKEN)).status, 200);
    for (let i = 0; i < 5; i++) assert.equal((await login(ip, other, 'wrong-token')).status, 401, `attempt ${i + 1} after the login`);
    assert.equal((await login(ip, other, 'wrong-token')).status, 429);
  });

  it('logout deletes the session in every process: the same cookie, replayed, is refused', async () => {
    const ip = '127.0.0.14';
    const cookie = cookieOf(await login(ip, stack.base, TOKEN));
    assert.equal((await board(ip, stack.base, cookie)).status, 200);
    assert.equal((await board(ip, other, cookie)).status, 200, 'a session of one api process is valid in another');
    const out = await from(ip, other, '/ui/logout', { method: 'POST', cookie });
    assert.equal(out.status, 204);
    assert.match(String(out.headers['set-cookie']), /^stv_session=; .*Max-Age=0/);
    assert.equal((await board(ip, stack.base, cookie)).status, 401);
    assert.equal((await board(ip, other, cookie)).status, 401);
  });

  it('rotating the admin token ends every session issued for the old one', async () => {
    const ip = '127.0.0.15';
    const cookie = cookieOf(await login(ip, stack.base, TOKEN));
    assert.equal((await board(ip, stack.base, cookie)).status, 200);
    const rotated = `rotated-admin-token-${Date.now()}`;
    const renewed = (await stack.startApp({ api: true, worker: false }, { adminToken: rotated })).base;
    assert.equal((await board(ip, renewed, cookie)).status, 401);
    assert.equal((await login(ip, renewed, TOKEN)).status, 401, 'the old token no longer logs in');
    const fresh = cookieOf(await login(ip, renewed, rotated));
    assert.equal((await board(ip, renewed, fresh)).status, 200);
  });
});

async function assertSeverityChart(page: Page, summary: Record<string, number>): Promise<void> {
  const bars = await page
    .locator('#severity-chart rect.bar')
    .evaluateAll((els) => els.map((b) => [b.getAttribute('data-severity'), Number(b.getAttribute('data-count'))]));
  assert.deepEqual(Object.fromEntries(bars), {
    critical: summary.critical,
    high: summary.high,
    medium: summary.medium,
    low: summary.low,
    unknown: summary.unknown,
  });
}
