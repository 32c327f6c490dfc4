/**
 * Every environment variable the service reads, with its default and meaning. The
 * README's configuration table is this list; `describeConfig()` prints it.
 */
export const CONFIG_VARIABLES = {
  STEVEDORE_HTTP_HOST: { default: '0.0.0.0', doc: 'Address the REST API listens on.' },
  STEVEDORE_HTTP_PORT: { default: '8080', doc: 'Port of the REST API (`/docs`, `/openapi.json`, `/healthz`, `/readyz`).' },
  STEVEDORE_GRPC_PORT: { default: '50051', doc: 'Port of the gRPC server (health, reflection, `stevedore.v1`).' },
  STEVEDORE_TOKEN: {
    default: '',
    doc:
      'Admin bearer token (at least 16 characters). `serve` generates one into ' +
      '`<state dir>/admin-token` when unset; `api` and `worker` require it.',
  },
  STEVEDORE_STATE_DIR: {
    default: '/var/lib/stevedore',
    doc:
      'Where `serve` keeps embedded Redis data (AOF), the embedded registry, BuildKit state, `serve.json`, `admin-token` and the ' +
      'generated credentials of the embedded Redis and registry (`redis-password`, `registry-password`, `docker/config.json`) ' +
      'and, without STEVEDORE_SIGNING_KEYS_FILE, its default signing key (`signing/`).',
  },
  STEVEDORE_CACHE_DIR: {
    default: '/var/cache/stevedore',
    doc: 'Toolchain cache made by `npm run setup`: pinned Node, buildkitd/buildctl/trivy/cosign, the seeded base image.',
  },
  REDIS_URL: {
    default: '',
    doc:
      'Redis for queues and job records, with its password: `redis://:PASSWORD@redis:6379/0` (`rediss://` for TLS). ' +
      'A URL without a password is refused at start (see `STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS`). Unset: `serve` ' +
      'starts an embedded Redis with a generated password (`<state dir>/redis-password`); `api`/`worker` require it.',
  },
  STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS: {
    default: 'false',
    doc:
      '**Unsafe.** `true` lets `api`, `worker` and `serve` use a `REDIS_URL` without a password: anyone who reaches ' +
      'that Redis can read every job record and queue jobs the workers run. Only for a Redis no one else can reach.',
  },
  BUILDKIT_HOST: {
    default: '',
    doc:
      'buildkitd address, e.g. `unix:///run/buildkit/buildkitd.sock` or ' +
      '`tcp://host:1234`. Unset: `serve` starts an embedded buildkitd (root needed).',
  },
  STEVEDORE_BUILDKIT_TLS_DIR: {
    default: '',
    doc:
      'Directory with the client certificate for a `tcp://` `BUILDKIT_HOST` that requires ' +
      'mutual TLS: `ca.pem`, `cert.pem`, `key.pem` (or `ca.crt`, `tls.crt`, `tls.key`), ' +
      'handed to buildctl as `--tlsdir`. `scripts/gen-buildkit-certs.sh` makes them.',
  },
  STEVEDORE_REGISTRY_MIRROR: {
    default: '',
    doc:
      'host:port of the registry BuildKit uses as its docker.io mirror (holds `library/debian:bookworm-slim`). ' +
      'Unset: `serve` starts an embedded registry on `STEVEDORE_REGISTRY_LISTEN` and seeds it.',
  },
  STEVEDORE_REGISTRY_LISTEN: {
    default: '127.0.0.1:5000',
    doc:
      'Listen address of the embedded registry. It requires the user `stevedore` with ' +
      'the password in `<state dir>/registry-password` for every request, reads included ' +
      '(htpasswd, HTTP basic auth: keep it on loopback or put TLS in front of it).',
  },
  STEVEDORE_LOG_LEVEL: { default: 'info', doc: 'pino level: fatal, error, warn, info, debug, trace, silent.' },
  STEVEDORE_JOB_RETENTION_SECONDS: {
    default: '604800',
    doc: 'How long finished job records and their event logs are kept (default 7 days).',
  },
  STEVEDORE_CATALOGUE_RETENTION_DAYS: {
    default: '90',
    doc:
      'Image catalogue (`GET /v1/images`): a digest not built, pushed, signed or scanned for this many days is dropped ' +
      '(its Redis TTL, refreshed on every write; listings skip and prune older entries). Durable only if Redis persists (AOF).',
  },
  STEVEDORE_RESCAN_INTERVAL_SECONDS: {
    default: '300',
    doc:
      "How often a worker checks whether Trivy's vulnerability DB changed (its UpdatedAt); on a change every catalogued digest " +
      'scanned with an older DB is rescanned in the background lane, from its stored SBOM when there is one. A DB loaded through ' +
      '`PUT /v1/system/trivy-db` is checked at once. 0 turns rescans off.',
  },
  STEVEDORE_RECONCILE_INTERVAL_SECONDS: {
    default: '30',
    doc:
      'How often one worker process looks for job records left behind: `queued` with nothing on the BullMQ queue (a submit ' +
      'that died between its record and its queue add) or `running` with no worker holding the job. 0 turns this off.',
  },
  STEVEDORE_RECONCILE_AFTER_SECONDS: {
    default: '120',
    doc:
      'How old such a record must be, and it must be seen left behind on two passes in a row, before it is failed ' +
      '(QUEUE_UNAVAILABLE when it was never queued, WORKER_LOST otherwise): a slow submit or a starting worker is never touched.',
  },
  STEVEDORE_RESCAN_CONCURRENCY: {
    default: '1',
    doc: 'Rescans one worker runs at a time, in their own queue beside the scan queue, so interactive scans never wait behind them.',
  },
  STEVEDORE_CONCURRENCY: {
    default: '',
    doc:
      'Worker concurrency per queue, e.g. `inspect=16,build=2`. Defaults: ' +
      'build 2, scan 2, push 4, sign 4, verify 4, inspect 8, optimize 2.',
  },
  STEVEDORE_REGISTRY_AUTH_FILE: {
    default: '',
    doc:
      'Docker `config.json` with registry credentials (`auths`), read by the server; jobs ' +
      'never carry credentials. `serve` with its embedded registry uses ' +
      "`<state dir>/docker/config.json`: this file (when set) plus the embedded registry's credentials.",
  },
  STEVEDORE_INSECURE_REGISTRIES: {
    default: '',
    doc: 'Comma-separated host:port list reached over plain HTTP (loopback registries always are).',
  },
  STEVEDORE_REGISTRY_ALLOWED_HOSTS: {
    default: '',
    doc:
      'Comma-separated `host[:port]` registries a job may name although they are loopback, private, link-local or ' +
      'metadata addresses (after DNS resolution), e.g. an internal registry; a host without a port allows all its ' +
      'ports. The mirror (or the embedded registry) and `STEVEDORE_INSECURE_REGISTRIES` are always allowed. Others ' +
      'are refused at submission (400 REGISTRY_FORBIDDEN) and at connect time, redirects and token realms included.',
  },
  STEVEDORE_BODY_LIMIT_BYTES: { default: '10485760', doc: 'Largest JSON request body accepted (413 above it).' },
  STEVEDORE_CONTEXT_ROOT: {
    default: '',
    doc:
      'Server directory under which a build without a context finds `dockerfile_path` ' +
      '(its directory is the context). Unset: such builds are refused.',
  },
  STEVEDORE_CONTEXT_MAX_BYTES: { default: '536870912', doc: 'Largest uploaded build context (POST /v1/contexts), default 512 MiB.' },
  STEVEDORE_CONTEXT_TTL_SECONDS: { default: '86400', doc: 'Uploaded contexts unused this long are deleted.' },
  STEVEDORE_CONTEXT_MAX_EXPANDED_BYTES: {
    default: '2147483648',
    doc:
      'Largest uploaded context once unpacked (sum of file sizes, and the decompressed tar stream), ' +
      'default 2 GiB: a small gzip can expand a thousandfold. 413 `CONTEXT_TOO_LARGE` above it.',
  },
  STEVEDORE_CONTEXT_MAX_ENTRIES: {
    default: '65536',
    doc: 'Most entries (files, directories, links) in one uploaded context (413 `CONTEXT_TOO_LARGE` above it).',
  },
  STEVEDORE_CONTEXT_UPLOAD_TIMEOUT_SECONDS: {
    default: '300',
    doc:
      'Time limit of one context upload: receiving it (408 `UPLOAD_TIMEOUT` when the ' +
      'body is still arriving), then checking and unpacking it (413 `CONTEXT_TOO_LARGE`).',
  },
  STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES: {
    default: '10737418240',
    doc:
      "Disk a tenant's uploaded contexts may take, unpacked (default 10 GiB; 0 = no quota). Each tenant is charged the " +
      'full size of every context it holds until its TTL passes; an upload past it gets 429 `CONTEXT_QUOTA_EXCEEDED`.',
  },
  STEVEDORE_BUILD_PLATFORMS: { default: 'linux/amd64,linux/arm64', doc: 'Platforms a build may ask for (foreign ones run through QEMU).' },
  STEVEDORE_BASE_PLATFORMS: {
    default: 'linux/amd64,linux/arm64',
    doc:
      'Platforms of the seeded `debian:bookworm-slim` index (setup debootstraps each; foreign ones under QEMU). Must include ' +
      'linux/amd64; also linux/arm/v7, linux/ppc64le, linux/s390x, linux/386, linux/mips64le. Add a platform here when ' +
      'STEVEDORE_BUILD_PLATFORMS allows it and builds start `FROM debian:bookworm-slim`.',
  },
  STEVEDORE_BUILD_ALLOWED_HOSTS: {
    default: '',
    doc:
      "Comma-separated `host[:port]` a build's own fetches (`ADD <url>`, git contexts, registry pulls " +
      'and pushes) may reach although they are loopback, private or link-local (e.g. an internal git ' +
      'server or registry). The registry mirror is always allowed. Everything else local or private is ' +
      'refused: at submission (git contexts, 400) and by the build firewall (docs/build-isolation.md).',
  },
  STEVEDORE_BUILD_SECRETS: {
    default: '',
    doc:
      'Build secrets by name: `npm_token=env:NPM_TOKEN,pip_conf=file:/etc/stevedore/pip.conf`. ' +
      'Builds name them in `secrets`; values never enter Redis, events or logs.',
  },
  STEVEDORE_TRIVY_CACHE_DIR: { default: '', doc: "Trivy's cache dir; its DB is `<dir>/db/trivy.db`. Default `<state dir>/trivy`." },
  STEVEDORE_TRIVY_DB_UPDATE: {
    default: 'auto',
    doc:
      '`auto`: download the DB when `STEVEDORE_TRIVY_DB_REPOSITORY` answers (checked with a 3 s probe), at most once per ' +
      'its `NextUpdate` and beside scans while a DB is present; otherwise scans use the DB present. `true`: Trivy updates ' +
      'it during every scan (failing when unreachable). `false`: never; scans use the DB present. README: Trivy DB.',
  },
  STEVEDORE_TRIVY_DB_REPOSITORY: {
    default: 'mirror.gcr.io/aquasec/trivy-db:2,ghcr.io/aquasecurity/trivy-db:2',
    doc: "Comma-separated OCI repositories of Trivy's DB, tried in order (Trivy's `--db-repository`), e.g. a local mirror.",
  },
  STEVEDORE_TRIVY_DB_MAX_BYTES: {
    default: '2147483648',
    doc: 'Largest Trivy DB `PUT /v1/system/trivy-db` accepts: the tar as sent, unpacked, and trivy.db itself (default 2 GiB).',
  },
  TRIVY_SERVER_URL: {
    default: '',
    doc: 'Scan in client/server mode against this Trivy server (`trivy server`); the workers then need no DB.',
  },
  TRIVY_TOKEN: { default: '', doc: "The Trivy server's token (sent as Trivy-Token; never logged or stored)." },
  STEVEDORE_SIGNING_KEYS_FILE: {
    default: '',
    doc:
      'JSON file naming the cosign signing keys: `{"default": "release", "keys": [{"name": ' +
      '"release", "key": "/etc/stevedore/cosign.key" or a KMS URI, "password_env": "VAR" ' +
      'or "password_file": "/path", optionally "public_key": "/etc/stevedore/cosign.pub"}]}`. Passwords are read at use, ' +
      'never stored. `public_key` (the PEM cosign wrote beside the key) is served by `GET /v1/signing-keys` without cosign ' +
      '(an `api` process has none); without it cosign derives it. Unset: `serve` generates a key pair ' +
      '(`<state dir>/signing/`, key `default`); `api` and `worker` have none and refuse sign/verify.',
  },
  STEVEDORE_SIGNING_OFFLINE: {
    default: 'true',
    doc: "Sign and verify with no transparency log and no Sigstore services (air-gapped). `false`: cosign's defaults apply.",
  },
  STEVEDORE_DEFAULT_PIPELINE: {
    default: 'sbom,sign',
    doc:
      'What every build that pushes gets without asking: `sbom` (a CycloneDX SBOM per platform manifest, stored as ' +
      'the artifact `sbom.cdx[.<platform>].json` and attached as a signed cosign attestation) and `sign` (the image ' +
      'signed with the default key, an index recursively). A request switches one off with `sbom: false` / `sign: ' +
      'false`; `sbom!` / `sign!` make it mandatory (such a request gets 400). `none`: neither. Without a signing key ' +
      '`sign` is skipped and the SBOM is only stored (the result says why); `sign!` then fails the build (SIGNING_KEY_UNAVAILABLE).',
  },
  STEVEDORE_SMOKE_RUNTIME: {
    default: 'buildkit',
    doc:
      'How optimize verify smoke-tests both images: `buildkit` (a throwaway build step runs the default command; ' +
      'no container engine needed), `docker` (the Docker CLI and engine) or `none` (smoke test skipped).',
  },
  STEVEDORE_SMOKE_TIMEOUT_SECONDS: {
    default: '10',
    doc: 'Time limit of one smoke-test run; a program still running then (a server) counts as running.',
  },
  STEVEDORE_SECRETS_KEY: {
    default: '',
    doc:
      'AES-256-GCM key (32 bytes, base64) that encrypts tenant secrets and webhook secrets at rest. `serve` generates ' +
      'one into `<state dir>/secrets.key` when unset; `api` and `worker` require it (the same value everywhere).',
  },
  STEVEDORE_API_KEY_RATE_LIMIT: {
    default: '600',
    doc:
      'Requests per minute per API key when the key sets no `rate_limit_per_minute` ' +
      '(429 with Retry-After above it; 0 = unlimited). The admin token is not limited.',
  },
  STEVEDORE_TENANT_MAX_CONCURRENT_JOBS: {
    default: '0',
    doc: "Running jobs per tenant when the submitting key sets no `max_concurrent_jobs` (0 = only the workers' concurrency limits).",
  },
  STEVEDORE_TENANT_MAX_RATE_LIMIT: {
    default: '600',
    doc:
      "Ceiling on `rate_limit_per_minute` of keys a tenant's own `admin` key creates (403 LIMIT_FORBIDDEN above it, or " +
      "above the creating key's own limit); 0 = only the creating key's limit bounds it. The admin token may set any value.",
  },
  STEVEDORE_TENANT_MAX_CONCURRENT_JOBS_CEILING: {
    default: '8',
    doc:
      "Ceiling on `max_concurrent_jobs` of keys a tenant's own `admin` key creates (403 LIMIT_FORBIDDEN above it, or " +
      "above the creating key's or tenant's current cap); 0 = no ceiling of its own. The admin token may set any value.",
  },
  STEVEDORE_STREAMS_PER_KEY: {
    default: '20',
    doc:
      'Live event streams (SSE `/events` following, gRPC `Watch`) one API key may hold open on ' +
      'one API process; 429 TOO_MANY_STREAMS above it. 0 = no cap. The admin token is not capped.',
  },
  STEVEDORE_STREAMS_PER_TENANT: {
    default: '100',
    doc: 'Live event streams all keys of one tenant may hold open on one API process; 429 TOO_MANY_STREAMS above it. 0 = no cap.',
  },
  STEVEDORE_DEFAULT_TENANT_REPOSITORIES: {
    default: '',
    doc:
      'Comma-separated repository patterns an API key without `repositories` may push to (and ' +
      'read), `{tenant}` standing for its tenant, e.g. `registry.example:5000/{tenant}/**`. ' +
      'Empty: such keys write nothing (403 REPOSITORY_FORBIDDEN). Syntax: docs/tenancy.md.',
  },
  STEVEDORE_SHARED_READ_REPOSITORIES: {
    default: 'docker.io/library/**,{mirror}/library/**',
    doc:
      'Comma-separated repository patterns every API key may read (inspect, scan, verify, push source) besides ' +
      'its own; `{mirror}` is the docker.io mirror registry. Tenants never write Docker Hub names or `library/`.',
  },
  STEVEDORE_WEBHOOK_ALLOWED_HOSTS: {
    default: '',
    doc:
      'Comma-separated callback hosts exempt from the SSRF guard (e.g. an in-cluster receiver). ' +
      'Others may not resolve to loopback, private, link-local, multicast or unspecified addresses.',
  },
  STEVEDORE_WEBHOOK_ATTEMPTS: { default: '8', doc: 'Delivery attempts per webhook (at-least-once; the same webhook-id on every attempt).' },
  STEVEDORE_WEBHOOK_RETRY_BASE_MS: {
    default: '340000',
    doc: 'First retry delay of a failed webhook; each later one doubles, with jitter (8 attempts span about 12 h).',
  },
  STEVEDORE_WEBHOOK_TIMEOUT_MS: { default: '10000', doc: 'Time limit of one webhook delivery attempt.' },
  STEVEDORE_EXCEPTION_MAX_DAYS: {
    default: '365',
    doc: 'Longest an exception (`POST /v1/exceptions`, `POST /v1/vex`) may last: its `expires` is at most this many days ahead.',
  },
  STEVEDORE_EXCEPTION_MAX_PER_TENANT: { default: '1000', doc: 'Active exceptions a tenant may hold at once.' },
  STEVEDORE_EXCEPTION_SWEEP_SECONDS: {
    default: '30',
    doc: 'How often each process looks for exceptions that expired, to send `exception.expired` (once per exception).',
  },
  STEVEDORE_JOB_LOCK_SECONDS: {
    default: '30',
    doc:
      "How long a worker's hold on a running job lasts without renewal: a worker " +
      'that dies is detected (and its job recovered) within about twice this.',
  },
  STEVEDORE_SHUTDOWN_GRACE_SECONDS: {
    default: '30',
    doc:
      'On SIGTERM, how long running jobs may take to finish before they are handed back to the queue for ' +
      'another worker. A shutdown that still cannot finish (Redis not answering) exits 15 s later anyway.',
  },
  STEVEDORE_METRICS_PORT: {
    default: '9464',
    doc: "Port of a `worker`'s own /metrics and /healthz (the api and `serve` expose /metrics on the REST port). 0 = none.",
  },
  STEVEDORE_EVENT_LOOP_DEGRADED_MS: {
    default: '200',
    doc:
      '`/readyz` says `degraded` (still 200) while the event loop delay p99 (`stevedore_event_loop_delay_seconds`) ' +
      'stays above this many milliseconds for the whole window below.',
  },
  STEVEDORE_EVENT_LOOP_DEGRADED_WINDOW_SECONDS: {
    default: '30',
    doc: 'The window of `STEVEDORE_EVENT_LOOP_DEGRADED_MS`: every second of it must be over the threshold.',
  },
  STEVEDORE_SSE_HEARTBEAT_SECONDS: { default: '15', doc: 'Interval of the comment lines that keep an idle event stream open.' },
} as const;

export type ConfigVariable = keyof typeof CONFIG_VARIABLES;
