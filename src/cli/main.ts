import {
  assertRedisAuthenticated,
  ConfigError,
  describeConfig,
  loadConfig,
  redisUrlHasPassword,
  type AppConfig,
} from '../config/config.js';
import type { EmbeddedStack } from '../runtime/embedded-stack.js';
import { STEVEDORE_VERSION } from '../version.js';
import { ensureAdminToken, ensureSecretsKey } from './admin-token.js';
import { ensureDefaultSigningKey } from './signing-key-init.js';
import { CLIENT_COMMANDS, CLIENT_HELP, runClient } from './client/index.js';

const USAGE = `stevedore ${STEVEDORE_VERSION}

usage: stevedore <command>

  serve     API, gRPC and workers in one process (default). Starts an embedded Redis,
            buildkitd and registry under STEVEDORE_STATE_DIR for any of REDIS_URL,
            BUILDKIT_HOST, STEVEDORE_REGISTRY_MIRROR that is unset.
  api       REST + gRPC only (needs REDIS_URL with a password, STEVEDORE_TOKEN)
  worker    job workers only (needs REDIS_URL with a password, BUILDKIT_HOST)
  config    print the environment variables stevedore reads
  version   print the version (also --version)

${CLIENT_HELP}
`;

type Role = 'serve' | 'api' | 'worker';

/** After SIGTERM, how long past STEVEDORE_SHUTDOWN_GRACE_SECONDS the process may take to stop before it exits regardless. */
const HARD_STOP_MARGIN_MS = 15_000;

async function run(command: string): Promise<void> {
  switch (command) {
    case 'version':
    case '--version':
    case '-v':
      console.log(STEVEDORE_VERSION);
      return;
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    case 'config':
      console.log(describeConfig());
      return;
    case 'serve':
    case 'api':
    case 'worker':
      return runRole(command);
    default:
      if (CLIENT_COMMANDS.has(command)) {
        process.exitCode = await runClient(command, process.argv.slice(3));
        return;
      }
      console.error(`stevedore: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      process.exit(2);
  }
}

function requireFor(role: Role, config: AppConfig): void {
  const missing: string[] = [];
  if (!config.redisUrl) missing.push('REDIS_URL');
  if (role === 'api' && !config.adminToken) missing.push('STEVEDORE_TOKEN');
  if (!config.secretsKey) missing.push('STEVEDORE_SECRETS_KEY');
  if (role === 'worker' && !config.buildkitHost) missing.push('BUILDKIT_HOST');
  if (missing.length) throw new ConfigError(missing.map((variable) => ({ variable, problem: `required for \`stevedore ${role}\`` })));
}

async function runRole(role: Role): Promise<void> {
  // Loaded here, not at the top: client commands and --version never need NestJS.
  const [{ createLogger }, { startApp, stopApp }, { EmbeddedStack }, { startMetricsServer }] = await Promise.all([
    import('../config/logger.js'),
    import('../bootstrap.js'),
    import('../runtime/embedded-stack.js'),
    import('../metrics/metrics-server.js'),
  ]);
  let config = loadConfig();
  // Before anything starts: a REDIS_URL without a password is refused (serve's embedded
  // Redis always has one).
  assertRedisAuthenticated(config);
  const log = createLogger(config.logLevel);
  if (config.redisUrl && !redisUrlHasPassword(config.redisUrl))
    log.warn(
      'REDIS_URL has no password and STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS=true: ' +
        'whoever reaches this Redis can read job records and queue jobs',
    );
  let stack: EmbeddedStack | undefined;
  if (role === 'serve') {
    let tokenFile: string | undefined;
    if (!config.adminToken) {
      const made = ensureAdminToken(config.stateDir);
      config = { ...config, adminToken: made.token };
      tokenFile = made.file;
    }
    if (!config.secretsKey) config = { ...config, secretsKey: ensureSecretsKey(config.stateDir) };
    // No keys file: serve signs with a key pair of its own, so signing works out of the box.
    // Without cosign serve still starts; sign then answers that no key is configured.
    if (!config.signing.keysFile) {
      const made = await ensureDefaultSigningKey(config.stateDir, config.tools.cosign).catch(
        (err: Error) => void log.warn(`no default signing key: ${err.message.split('\n')[0]}`),
      );
      if (made) {
        config = { ...config, signing: { ...config.signing, keysFile: made.keysFile } };
        if (made.setAside) log.warn(`an incomplete signing key pair was moved to ${made.setAside}; a new one was made`);
        log.info(
          { keys_file: made.keysFile, public_key_file: made.publicKeyFile },
          `${made.created ? 'generated the' : 'using the'} default signing key (public key ${made.publicKeyFile}); ` +
            'set STEVEDORE_SIGNING_KEYS_FILE to sign with your own keys',
        );
      }
    }
    stack = new EmbeddedStack(config, (m, level) => (level === 'warn' ? log.warn(m) : log.info(m)));
    const endpoints = await stack.start();
    config = {
      ...config,
      redisUrl: endpoints.redis_url,
      buildkitHost: endpoints.buildkit_host,
      registryMirror: endpoints.registry,
      registryAuthFile: endpoints.registry_auth_file ?? config.registryAuthFile,
    };
    if (tokenFile) log.info({ token_file: tokenFile }, `admin token written to ${tokenFile}`);
  }
  requireFor(role, config);
  const app = await startApp(config, { api: role !== 'worker', worker: role !== 'api' }).catch(async (err: unknown) => {
    await stack?.stop();
    throw err;
  });
  const metrics =
    role === 'worker' && config.metricsPort > 0
      ? await startMetricsServer(config.http.host, config.metricsPort).catch(
          (err: Error) => void log.warn(`metrics server not started on port ${config.metricsPort}: ${err.message}`),
        )
      : undefined;
  if (role !== 'worker') {
    const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host;
    log.info(
      { url: `http://${host}:${config.http.port}`, grpc: `${host}:${config.grpc.port}` },
      `stevedore ${role} ready: http://${host}:${config.http.port} (docs at /docs), gRPC on ${config.grpc.port}`,
    );
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: shutting down`);
    // Last resort: a shutdown that cannot finish (Redis not answering, so running jobs
    // cannot be handed back) must not hang forever. The jobs this process still held are
    // found by BullMQ's stalled-job check and recovered by another worker.
    const hardStopMs = config.shutdownGraceMs + HARD_STOP_MARGIN_MS;
    const hardStop = setTimeout(() => {
      log.error(`${signal}: shutdown did not finish within ${hardStopMs / 1000} s; exiting anyway`);
      process.exit(1);
    }, hardStopMs);
    try {
      metrics?.close();
      await stopApp(app);
    } finally {
      clearTimeout(hardStop); // the embedded daemons' own stop is bounded (SIGKILL after 10 s)
      await stack?.stop();
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

run(process.argv[2] ?? 'serve').catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`stevedore: ${err.message}`);
    process.exit(2);
  }
  console.error(`stevedore: ${(err as Error).message ?? err}`);
  process.exit(1);
});
