import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/config.js';
import { queueDepth } from '../../src/metrics/metrics.js';
import { PROJECT_DIR } from '../support/env.js';

const DIR = join(PROJECT_DIR, 'deploy', 'k8s');

/** apiVersion of every kind the manifests may use (all in core Kubernetes, no CRDs). */
const API_VERSIONS: Record<string, string> = {
  Namespace: 'v1',
  Secret: 'v1',
  ConfigMap: 'v1',
  Service: 'v1',
  PersistentVolumeClaim: 'v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  NetworkPolicy: 'networking.k8s.io/v1',
};

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: any };

const versions = Object.fromEntries(
  readFileSync(join(PROJECT_DIR, 'scripts', 'versions.env'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => l.split('=') as [string, string]),
);
const kustomization = parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as {
  resources: string[];
  namespace: string;
  kind: string;
};
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .sort();
const objects: (Obj & { file: string })[] = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((doc) => {
    assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
    return { ...(doc.toJS() as Obj), file };
  }),
);
const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
const container = (workload: string, name: string) => {
  const w = workloads.find((o) => o.metadata.name === workload);
  assert.ok(w, `workload ${workload}`);
  const c = w.spec.template.spec.containers.find((x: any) => x.name === name);
  assert.ok(c, `${workload}: container ${name}`);
  return c;
};
const subset = (small: Record<string, string>, big: Record<string, string> = {}) => Object.entries(small).every(([k, v]) => big[k] === v);

/** Every variable a container gets: env entries plus the keys of the ConfigMaps and Secrets it takes whole. */
function environment(c: any): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const from of c.envFrom ?? []) {
    const source = from.configMapRef ? find('ConfigMap', from.configMapRef.name) : find('Secret', from.secretRef.name);
    assert.ok(source, `envFrom ${JSON.stringify(from)} names an object in deploy/k8s`);
    for (const [k, v] of Object.entries(source.data ?? source.stringData ?? {})) out.set(k, String(v));
  }
  for (const e of c.env ?? []) out.set(e.name, e.value);
  return out;
}

describe('deploy/k8s manifests', () => {
  it('are listed in the kustomization, each document a known kind with its apiVersion and a name', () => {
    assert.equal(kustomization.kind, 'Kustomization');
    assert.deepEqual([...kustomization.resources].sort(), files);
    for (const o of objects) {
      assert.ok(API_VERSIONS[o.kind], `${o.file}: unexpected kind ${o.kind}`);
      assert.equal(o.apiVersion, API_VERSIONS[o.kind], `${o.file}: ${o.kind} apiVersion`);
      assert.match(o.metadata?.name ?? '', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${o.file}: ${o.kind} metadata.name`);
    }
    assert.ok(find('Namespace', kustomization.namespace), 'the kustomization namespace is created');
    for (const kind of ['Deployment', 'StatefulSet', 'Service', 'HorizontalPodAutoscaler', 'ConfigMap', 'Secret'])
      assert.ok(
        objects.some((o) => o.kind === kind),
        `has a ${kind}`,
      );
  });

  it('has workloads whose selectors match their pods, with images, probes and resources', () => {
    for (const w of workloads) {
      const labels = w.spec.template.metadata.labels;
      assert.ok(subset(w.spec.selector.matchLabels, labels), `${w.metadata.name}: selector matches the pod labels`);
      for (const c of w.spec.template.spec.containers) {
        assert.match(c.image, /^[a-z0-9./-]+(:[\w.-]+)?$/, `${w.metadata.name}/${c.name}: image`);
        assert.ok(c.resources?.requests, `${w.metadata.name}/${c.name}: resource requests`);
        assert.ok(c.livenessProbe || c.readinessProbe, `${w.metadata.name}/${c.name}: a probe`);
        const ports = new Set((c.ports ?? []).map((p: any) => p.name));
        for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter(Boolean)) {
          if (probe.httpGet && typeof probe.httpGet.port === 'string')
            assert.ok(ports.has(probe.httpGet.port), `${w.metadata.name}: probe port ${probe.httpGet.port}`);
        }
        for (const m of c.volumeMounts ?? []) {
          const volumes = [...(w.spec.template.spec.volumes ?? []), ...(w.spec.volumeClaimTemplates ?? []).map((v: any) => v.metadata)].map(
            (v: any) => v.name,
          );
          assert.ok(volumes.includes(m.name), `${w.metadata.name}/${c.name}: volume ${m.name}`);
        }
      }
      for (const v of w.spec.template.spec.volumes ?? []) {
        if (v.persistentVolumeClaim)
          assert.ok(
            find('PersistentVolumeClaim', v.persistentVolumeClaim.claimName),
            `${w.metadata.name}: PVC ${v.persistentVolumeClaim.claimName}`,
          );
        if (v.configMap) assert.ok(find('ConfigMap', v.configMap.name), `${w.metadata.name}: ConfigMap ${v.configMap.name}`);
        if (v.secret && !v.secret.optional)
          assert.ok(find('Secret', v.secret.secretName), `${w.metadata.name}: Secret ${v.secret.secretName}`);
      }
    }
  });

  it('has Services that select pods and target their named ports', () => {
    for (const s of objects.filter((o) => o.kind === 'Service')) {
      const targets = workloads.filter((w) => subset(s.spec.selector, w.spec.template.metadata.labels));
      assert.ok(targets.length > 0, `Service ${s.metadata.name} selects a workload`);
      const named = new Set(
        targets.flatMap((w) => w.spec.template.spec.containers.flatMap((c: any) => (c.ports ?? []).map((p: any) => p.name))),
      );
      for (const p of s.spec.ports)
        if (typeof p.targetPort === 'string') assert.ok(named.has(p.targetPort), `Service ${s.metadata.name}: targetPort ${p.targetPort}`);
    }
  });

  it('runs the api and worker images with only variables the service reads, and what each role requires', () => {
    const api = container('stevedore-api', 'api');
    const worker = container('stevedore-worker', 'worker');
    assert.match(api.image, /(^|\/)stevedore-api:|\/api:/);
    assert.match(worker.image, /(^|\/)stevedore-worker:|\/worker:/);
    assert.deepEqual(api.args, ['api']);
    assert.deepEqual(worker.args, ['worker']);
    for (const [role, c] of [
      ['api', api],
      ['worker', worker],
    ] as const) {
      const env = environment(c);
      for (const name of env.keys()) assert.ok(name in CONFIG_VARIABLES, `${role}: ${name} is not a stevedore variable`);
      const required =
        role === 'api'
          ? ['REDIS_URL', 'STEVEDORE_TOKEN', 'STEVEDORE_SECRETS_KEY']
          : ['REDIS_URL', 'BUILDKIT_HOST', 'STEVEDORE_SECRETS_KEY', 'TRIVY_SERVER_URL', 'TRIVY_TOKEN'];
      for (const name of required) assert.ok(env.has(name), `${role} gets ${name}`);
      // The non-secret values pass the service's own validation (secrets replaced by valid stand-ins).
      const values = Object.fromEntries([...env].map(([k, v]) => [k, v ?? '']));
      Object.assign(values, {
        STEVEDORE_TOKEN: 'x'.repeat(24),
        STEVEDORE_SECRETS_KEY: Buffer.alloc(32).toString('base64'),
        TRIVY_TOKEN: 't',
        REDIS_URL: 'redis://redis:6379/0',
      });
      const config = loadConfig(values);
      if (role === 'worker') {
        assert.equal(
          c.ports.find((p: any) => p.name === 'metrics').containerPort,
          config.metricsPort,
          'the metrics port is STEVEDORE_METRICS_PORT',
        );
        const grace = find('Deployment', 'stevedore-worker')!.spec.template.spec.terminationGracePeriodSeconds;
        assert.ok(grace > config.shutdownGraceMs / 1000, `terminationGracePeriodSeconds ${grace} > STEVEDORE_SHUTDOWN_GRACE_SECONDS`);
        assert.match(config.trivy.serverUrl!, /^http:\/\/trivy:(\d+)$/);
        assert.equal(Number(config.trivy.serverUrl!.split(':').pop()), find('Service', 'trivy')!.spec.ports[0].port);
      } else {
        assert.equal(api.ports.find((p: any) => p.name === 'http').containerPort, config.http.port);
        assert.equal(api.readinessProbe.httpGet.path, '/readyz');
      }
      // BUILDKIT_HOST (the workers' only) and the mirror name Services defined here.
      if (role === 'worker') {
        const bk = /^tcp:\/\/([a-z0-9-]+):(\d+)$/.exec(config.buildkitHost!)!;
        assert.ok(
          bk && find('Service', bk[1]!)?.spec.ports.some((p: any) => p.port === Number(bk[2])),
          `${role}: BUILDKIT_HOST ${config.buildkitHost}`,
        );
      } else {
        assert.equal(config.buildkitHost, undefined, 'the api never talks to buildkitd');
      }
      const mirror = config.registryMirror!.split(':');
      assert.ok(
        find('Service', mirror[0]!)?.spec.ports.some((p: any) => p.port === Number(mirror[1])),
        `${role}: STEVEDORE_REGISTRY_MIRROR`,
      );
      assert.ok(config.insecureRegistries.includes(config.registryMirror!), 'the in-cluster mirror is plain HTTP');
    }
    for (const name of Object.keys(find('Secret', 'stevedore')!.stringData)) assert.ok(name in CONFIG_VARIABLES, `Secret key ${name}`);
  });

  it('runs buildkitd as a privileged StatefulSet of the pinned version behind a headless Service', () => {
    const sts = find('StatefulSet', 'buildkitd')!;
    assert.ok(sts, 'buildkitd StatefulSet');
    const headless = find('Service', sts.spec.serviceName)!;
    assert.equal(headless?.spec.clusterIP, 'None', 'serviceName is a headless Service');
    const c = container('buildkitd', 'buildkitd');
    assert.equal(c.image, `moby/buildkit:${versions.BUILDKIT_VERSION}`);
    assert.equal(c.securityContext.privileged, true);
    assert.ok(c.args.join(' ').includes('tcp://0.0.0.0:1234'));
    assert.deepEqual(
      c.args.filter((_: string, i: number) => c.args[i - 1] === '--addr'),
      ['tcp://0.0.0.0:1234'],
      'one listener: TCP',
    );
    const toml = find('ConfigMap', 'buildkitd')!.data['buildkitd.toml'] as string;
    const mirror = environment(container('stevedore-worker', 'worker')).get('STEVEDORE_REGISTRY_MIRROR');
    assert.ok(toml.includes(`mirrors = ["${mirror}"]`), 'buildkitd mirrors docker.io through STEVEDORE_REGISTRY_MIRROR');
  });

  it('makes buildkitd demand the workers’ client certificate (mutual TLS), its probes included', () => {
    const c = container('buildkitd', 'buildkitd');
    const flag = (name: string) => c.args[c.args.indexOf(name) + 1];
    const mount = (w: any, name: string) => w.spec.template.spec.containers[0].volumeMounts.find((m: any) => m.name === name);
    const sts = find('StatefulSet', 'buildkitd')!;
    const tlsVolume = sts.spec.template.spec.volumes.find((v: any) => v.secret?.secretName === 'buildkitd-tls');
    assert.ok(tlsVolume && !tlsVolume.secret.optional, 'the daemon certificate Secret');
    const dir = mount(sts, tlsVolume.name).mountPath;
    assert.deepEqual([flag('--tlscacert'), flag('--tlscert'), flag('--tlskey')], [`${dir}/ca.pem`, `${dir}/cert.pem`, `${dir}/key.pem`]);
    for (const probe of [c.readinessProbe, c.livenessProbe])
      assert.deepEqual(probe.exec.command.slice(0, 5), ['buildctl', '--addr', 'tcp://127.0.0.1:1234', '--tlsdir', dir]);
    const workerDeployment = find('Deployment', 'stevedore-worker')!;
    const clientVolume = workerDeployment.spec.template.spec.volumes.find((v: any) => v.secret?.secretName === 'buildkit-client-tls');
    assert.ok(clientVolume && !clientVolume.secret.optional, 'the client certificate Secret');
    const env = environment(container('stevedore-worker', 'worker'));
    assert.equal(env.get('STEVEDORE_BUILDKIT_TLS_DIR'), mount(workerDeployment, clientVolume.name).mountPath);
    for (const name of ['buildkitd-tls', 'buildkit-client-tls'])
      assert.deepEqual(Object.keys(find('Secret', name)!.stringData).sort(), ['ca.pem', 'cert.pem', 'key.pem'], name);
  });

  it('lets only the workers reach buildkitd, and buildkitd no private or metadata address', () => {
    const policy = find('NetworkPolicy', 'buildkitd')!;
    assert.deepEqual(policy.spec.podSelector.matchLabels, find('StatefulSet', 'buildkitd')!.spec.template.metadata.labels);
    assert.deepEqual([...policy.spec.policyTypes].sort(), ['Egress', 'Ingress']);
    assert.deepEqual(
      policy.spec.ingress.map((r: any) => r.from.map((f: any) => f.podSelector.matchLabels)),
      [[{ 'app.kubernetes.io/component': 'worker' }]],
    );
    const egress = policy.spec.egress as any[];
    const blocks = egress.flatMap((r) => (r.to ?? []).filter((t: any) => t.ipBlock).map((t: any) => t.ipBlock));
    const v4 = blocks.find((b: any) => b.cidr === '0.0.0.0/0');
    for (const cidr of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '127.0.0.0/8'])
      assert.ok(v4.except.includes(cidr), `egress excepts ${cidr}`);
    assert.ok(blocks.find((b: any) => b.cidr === '::/0').except.includes('fc00::/7'));
    // Besides the internet ranges, only DNS and the mirror: no rule lets it reach Redis or the api.
    const selectors = egress.flatMap((r) => (r.to ?? []).filter((t: any) => t.podSelector).map((t: any) => t.podSelector.matchLabels));
    assert.deepEqual(selectors, [{ 'k8s-app': 'kube-dns' }, { 'app.kubernetes.io/component': 'registry-mirror' }]);
    assert.deepEqual(
      egress[0].ports.map((p: any) => p.port),
      [53, 53],
    );
  });

  it('runs the Trivy server of the pinned version with the workers’ token', () => {
    const c = container('trivy', 'trivy');
    assert.equal(c.image, `aquasec/trivy:${versions.TRIVY_VERSION!.replace(/^v/, '')}`);
    assert.equal(c.args[0], 'server');
    assert.equal(c.args[c.args.indexOf('--listen') + 1], `0.0.0.0:${c.ports[0].containerPort}`);
    assert.deepEqual(c.env.find((e: any) => e.name === 'TRIVY_TOKEN').valueFrom.secretKeyRef, { name: 'stevedore', key: 'TRIVY_TOKEN' });
  });

  it('autoscales the workers on stevedore_queue_depth, the metric the service exports', async () => {
    const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler')!;
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'stevedore-worker' });
    assert.ok(hpa.spec.minReplicas >= 1 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
    const metric = hpa.spec.metrics[0];
    assert.equal(metric.type, 'External');
    const exported = (await queueDepth.get()) as unknown as { name: string };
    assert.equal(metric.external.metric.name, exported.name);
    const states = metric.external.metric.selector.matchExpressions.find((e: any) => e.key === 'state').values;
    assert.deepEqual([...states].sort(), ['active', 'waiting']);
    const adapter = parse(readFileSync(join(DIR, 'prometheus-adapter', 'values.yaml'), 'utf8'));
    assert.equal(adapter.rules.external[0].name.as, exported.name);
  });
});
