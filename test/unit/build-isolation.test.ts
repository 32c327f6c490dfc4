import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertBuildSourcesAllowed, gitUrlHost } from '../../src/admission/build-policy.js';
import { buildctlArgs, isTenantBuildArg, tenantCacheSalt, type BuildSpec } from '../../src/engines/buildkit/build-command.js';
import { parseHostPort } from '../../src/oci/references.js';
import { daemonJump, daemonRules, parseNameservers, sharedJumps, sharedRules } from '../../src/runtime/build-firewall.js';
import { buildkitdConfig } from '../../src/runtime/buildkitd.js';

const host = { nameservers: ['10.255.255.53'], lanSubnets: ['192.0.2.0/24'] };

describe('build firewall rules', () => {
  it('lets RUN steps ask the nameserver, then rejects private, metadata and LAN destinations, and the host itself', () => {
    const rules = sharedRules(host, 4).split('\n');
    const dns = rules.findIndex((r) => r.includes('-d 10.255.255.53 -p udp --dport 53 -j RETURN'));
    const tenNet = rules.findIndex((r) => r.includes('-d 10.0.0.0/8 -j REJECT'));
    assert.ok(dns > 0 && tenNet > dns, 'DNS is allowed before 10/8 is rejected');
    for (const net of ['169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '127.0.0.0/8', '192.0.2.0/24'])
      assert.ok(rules.includes(`-A STV-BUILD-FWD -d ${net} -j REJECT --reject-with icmp-admin-prohibited`), net);
    assert.ok(rules.includes('-A STV-BUILD-IN -j REJECT --reject-with icmp-admin-prohibited'));
    assert.equal(rules[0], '*filter');
    assert.ok(rules.includes('COMMIT'));
    // No public destination is rejected: the outside world stays reachable.
    assert.ok(!rules.some((r) => /-d (0\.0\.0\.0\/0|203\.|8\.8\.)/.test(r)));
  });

  it('renders IPv6 rules without IPv4 addresses', () => {
    const rules = sharedRules(host, 6);
    assert.ok(!rules.includes('10.255.255.53'));
    assert.match(rules, /-A STV-BUILD-FWD -d fe80::\/10 -j REJECT --reject-with adm-prohibited/);
  });

  it("allows a daemon only its allowed host:ports on the host's own and private addresses", () => {
    const rules = daemonRules(3, host, [{ ip: '127.0.0.1', port: 5000 }, { ip: '10.1.2.3' }], 4).split('\n');
    const allowed = rules.indexOf('-A STV-BKD-3 -d 127.0.0.1 -p tcp --dport 5000 -j RETURN');
    const local = rules.indexOf('-A STV-BKD-3 -m addrtype --dst-type LOCAL -j REJECT --reject-with icmp-admin-prohibited');
    assert.ok(allowed > 0 && local > allowed);
    assert.ok(rules.includes('-A STV-BKD-3 -d 10.1.2.3 -j RETURN'));
    assert.deepEqual(daemonJump(3, 1_950_000_003), {
      chain: 'OUTPUT',
      rule: ['-m', 'owner', '--gid-owner', '1950000003', '-j', 'STV-BKD-3'],
    });
    assert.deepEqual(
      sharedJumps().map((j) => j.chain),
      ['INPUT', 'FORWARD', 'CNI-ADMIN', 'DOCKER-USER'],
    );
  });

  it('reads nameservers, dropping loopback ones', () => {
    assert.deepEqual(parseNameservers('# x\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver fd00::1\nsearch x\n'), [
      '10.255.255.53',
      'fd00::1',
    ]);
  });

  it('parses host[:port] entries', () => {
    assert.deepEqual(parseHostPort('git.internal:8443'), { host: 'git.internal', port: 8443 });
    assert.deepEqual(parseHostPort('[::1]:5000'), { host: '::1', port: 5000 });
    assert.deepEqual(parseHostPort('10.0.0.1'), { host: '10.0.0.1', port: undefined });
  });
});

describe('buildkitd sandbox config', () => {
  it('puts RUN steps on the bridge and turns gateway frontends off', () => {
    const toml = buildkitdConfig('/r', 'unix:///s', '127.0.0.1:5000', { index: 4, bridge: 'stvbk4', subnet: '10.213.4.0/24', gid: 1 });
    assert.match(
      toml,
      /networkMode = "bridge"\n {2}cniBinaryPath = "\/usr\/lib\/cni"\n {2}bridgeName = "stvbk4"\n {2}bridgeSubnet = "10\.213\.4\.0\/24"/,
    );
    assert.match(toml, /\[frontend\."gateway\.v0"\]\n {2}enabled = false/);
  });
});

describe('per-tenant build cache', () => {
  const spec = (cacheSalt: string, buildArgs: Record<string, string> = {}): BuildSpec => ({
    context: { dir: '/c' },
    dockerfileName: 'Dockerfile',
    buildArgs,
    platforms: [],
    tags: [],
    push: false,
    labels: {},
    noCache: false,
    secrets: [],
    provenance: false,
    annotations: {},
    insecureRegistries: [],
    metadataFile: '/m',
    cacheSalt,
  });

  it('salts every RUN step and cache mount with the tenant, and ignores # syntax lines', () => {
    const a = tenantCacheSalt('team-a');
    assert.notEqual(a, tenantCacheSalt('team-b'));
    assert.equal(a, tenantCacheSalt('team-a'));
    assert.match(a, /^stv-[0-9a-f]{20}$/);
    const args = buildctlArgs('unix:///x', spec(a)).join(' ');
    assert.ok(
      args.includes(`--opt add-hosts=${a}.stevedore.invalid=127.0.0.1 --opt build-arg:BUILDKIT_CACHE_MOUNT_NS=${a} --opt cmdline=`),
    );
  });

  it('refuses the BUILDKIT_* build args that would override the isolation, not others', () => {
    for (const name of ['BUILDKIT_CACHE_MOUNT_NS', 'BUILDKIT_SANDBOX_HOSTNAME', 'BUILDKIT_SYNTAX', 'BUILDKIT_ATTEST_SBOM']) {
      assert.equal(isTenantBuildArg(name), false, name);
      assert.throws(() => buildctlArgs('unix:///x', spec('stv-a', { [name]: 'x' })), /reserved/);
    }
    for (const name of ['BUILDKIT_INLINE_CACHE', 'BUILDKIT_IMAGE', 'NPM_TOKEN_FILE', 'SOURCE_DATE_EPOCH'])
      assert.equal(isTenantBuildArg(name), true, name);
    assert.throws(() => buildctlArgs('unix:///x', spec('bad salt')), /salt/);
  });
});

describe('git context guard', () => {
  it('reads host and port from the three URL forms', () => {
    assert.deepEqual(gitUrlHost('https://git.example/x.git'), { host: 'git.example', port: 443 });
    assert.deepEqual(gitUrlHost('http://127.0.0.1:5000/v2/_catalog'), { host: '127.0.0.1', port: 5000 });
    assert.deepEqual(gitUrlHost('ssh://git@[::1]:2222/x.git'), { host: '::1', port: 2222 });
    assert.deepEqual(gitUrlHost('git@10.0.0.5:team/x.git'), { host: '10.0.0.5', port: 22 });
  });

  it('refuses loopback, private and metadata hosts unless allowed (by host, or host and port)', async () => {
    const build = (git: string) => ({ action: 'build', context: { git } }) as never;
    for (const git of [
      'http://127.0.0.1:6379/x.git',
      'https://169.254.169.254/x.git',
      'git@192.168.1.1:x.git',
      'http://[::ffff:127.0.0.1]/x.git',
      'https://localhost/x.git',
    ]) {
      await assert.rejects(
        assertBuildSourcesAllowed(build(git), { buildAllowedHosts: [] }),
        (err: any) => err.code === 'VALIDATION_FAILED' && err.details.fields[0].path === 'context.git',
        git,
      );
    }
    await assertBuildSourcesAllowed(build('http://127.0.0.1:8080/x.git'), { buildAllowedHosts: ['127.0.0.1:8080'] });
    await assertBuildSourcesAllowed(build('http://git.internal/x.git'), { buildAllowedHosts: ['git.internal'] });
    await assert.rejects(assertBuildSourcesAllowed(build('http://127.0.0.1:8081/x.git'), { buildAllowedHosts: ['127.0.0.1:8080'] }));
  });
});
