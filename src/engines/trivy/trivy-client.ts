import { lastLine, ProcessError, toolEnv, type ProcessRunner } from '../process-runner.js';
import { isLoopbackRegistry, parseImageReference } from '../../oci/references.js';
import { TrivyDb } from './trivy-db.js';

export interface TrivySettings {
  trivy: string;
  /** Trivy's cache dir; the vulnerability DB is `<cacheDir>/db/trivy.db`. */
  cacheDir: string;
  /**
   * STEVEDORE_TRIVY_DB_UPDATE. auto: stevedore updates the DB when its repository answers,
   * apart from scans (trivy-db.ts); true: Trivy updates it during each scan; false: never.
   */
  dbUpdate: boolean | 'auto';
  /** OCI repositories of the DB (Trivy's --db-repository), in order; Trivy's defaults when unset. */
  dbRepositories?: string[];
  /** Largest DB PUT /v1/system/trivy-db takes. */
  dbMaxBytes?: number;
  /** Client/server mode: the Trivy server and its token (a secret: passed by environment). */
  serverUrl?: string;
  serverToken?: string;
  insecureRegistries: string[];
  /** Directory holding a Docker config.json with registry credentials. */
  dockerConfigDir?: string;
}

export interface ScanOptions {
  platform?: string;
  scanners: ('vuln' | 'secret')[];
  severity?: string[];
  ignoreUnfixed?: boolean;
  /**
   * An OpenVEX file (`--vex`): findings its not_affected/fixed statements cover move to
   * the report's ExperimentalModifiedFindings with that status (pkg/vex in Trivy v0.74).
   */
  vexFile?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Trivy cannot scan: no DB, no server, or Trivy itself broke. */
export class ScannerUnavailableError extends Error {}

export class TrivyScanError extends Error {
  constructor(
    message: string,
    readonly notFound: boolean,
  ) {
    super(message);
  }
}

/** Adapter over the trivy binary: scan an image in its registry, convert reports. */
export class TrivyClient {
  /** The DB scans use: its state, the auto update, the admin endpoint's load. */
  readonly db: TrivyDb;

  constructor(
    private readonly runner: ProcessRunner,
    private readonly settings: TrivySettings,
  ) {
    this.db = new TrivyDb(runner, settings);
  }

  /**
   * UpdatedAt of the DB scans use (part of every scan cache key); undefined when there
   * is none. In client/server mode that is the server's DB, which it reports on
   * `GET /version` (no token needed): a server that updates its DB thereby invalidates
   * cached scans, and an unreachable one gets no cache hits. Asked at the start of each
   * scan: in `auto` mode it first applies the update policy (TrivyDb.prepare), so the
   * date is that of the DB the scan will use.
   */
  async dbUpdatedAt(): Promise<string | undefined> {
    if (this.settings.serverUrl) return this.serverDbUpdatedAt(this.settings.serverUrl);
    await this.db.prepare();
    return (await this.db.metadata())?.UpdatedAt;
  }

  private async serverDbUpdatedAt(serverUrl: string): Promise<string | undefined> {
    try {
      const res = await fetch(`${serverUrl.replace(/\/+$/, '')}/version`, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) return undefined;
      const body = (await res.json()) as { VulnerabilityDB?: { UpdatedAt?: string } };
      return body.VulnerabilityDB?.UpdatedAt || undefined;
    } catch {
      return undefined;
    }
  }

  /** Scans `reference` (pinned by digest) and writes Trivy's JSON report to `reportFile`. */
  async scanImage(reference: string, reportFile: string, options: ScanOptions): Promise<void> {
    await this.requireDb();
    const args = ['image', ...this.commonArgs('image'), '--image-src', 'remote', '--scanners', options.scanners.join(',')];
    args.push(...reportArgs(reportFile));
    if (options.platform) args.push('--platform', options.platform);
    args.push(...filterArgs(options));
    const registry = parseImageReference(reference).registry;
    if (!isLoopbackRegistry(registry) && this.settings.insecureRegistries.includes(registry)) args.push('--insecure');
    if (this.settings.serverUrl) args.push('--server', this.settings.serverUrl);
    args.push('--', reference);
    await this.runScan(args, options);
  }

  /**
   * Scans a CycloneDX SBOM — the one a scan stored (`convert --format cyclonedx` of its
   * JSON report, scan-stage.ts) — against the DB scans use, and writes Trivy's JSON
   * report to `reportFile`: a rescan without pulling a layer. The same findings as
   * scanImage on the same DB (test/integration/sbom-rescan-equivalence.test.ts checks
   * it) with the same offline, DB and report flags, except: `--scanners vuln` only (the
   * sbom command knows vuln and license; secrets are not in an SBOM and not in the DB),
   * no `--skip-check-update` (the sbom command has no checks and refuses the flag), and
   * an in-memory cache (the sbom command's default; said here so a concurrent image scan
   * never waits on the on-disk cache's lock). Trivy ignores the SBOM's own
   * `vulnerabilities` (the findings of the scan that made it) and detects them afresh.
   * The report names the SBOM file where an image scan names the image (asImageReport puts
   * it back), and a `vexFile` must name the packages too (scanVexDocument `packages`).
   */
  async scanSbom(sbomFile: string, reportFile: string, options: Omit<ScanOptions, 'platform' | 'scanners'> = {}): Promise<void> {
    await this.requireDb();
    const args = ['sbom', ...this.commonArgs('sbom'), '--cache-backend', 'memory', '--scanners', 'vuln'];
    args.push(...reportArgs(reportFile), ...filterArgs(options));
    if (this.settings.serverUrl) args.push('--server', this.settings.serverUrl);
    args.push('--', sbomFile);
    await this.runScan(args, options);
  }

  /** Only `true` lets Trivy fetch a missing DB during the scan; otherwise none means no scan. */
  private async requireDb(): Promise<void> {
    if (!this.settings.serverUrl && this.settings.dbUpdate !== true && !(await this.db.metadata())) {
      throw new ScannerUnavailableError(this.db.missingHint());
    }
  }

  private async runScan(args: string[], options: { signal?: AbortSignal; timeoutMs?: number }): Promise<void> {
    try {
      await this.runner.run(this.settings.trivy, args, { signal: options.signal, timeoutMs: options.timeoutMs, env: this.env() });
    } catch (err) {
      const failure = classify(err, this.settings.serverUrl);
      // `true` without a DB: Trivy's download failed; say how else to provide one.
      if (failure instanceof ScannerUnavailableError && !this.settings.serverUrl && !(await this.db.metadata()))
        throw new ScannerUnavailableError(this.db.missingHint(failure.message));
      throw failure;
    }
  }

  /** Re-renders a JSON report (sarif, cyclonedx) without scanning again. */
  async convert(reportFile: string, format: 'sarif' | 'cyclonedx' | 'cosign-vuln', outFile: string, signal?: AbortSignal): Promise<void> {
    await this.runner.run(this.settings.trivy, ['convert', '--quiet', '--format', format, '--output', outFile, '--', reportFile], {
      signal,
      timeoutMs: 120_000,
      env: this.env(),
    });
  }

  /** `sbom` has no misconfiguration checks, and no --skip-check-update flag. */
  private commonArgs(command: 'image' | 'sbom'): string[] {
    const args = ['--quiet', '--no-progress', '--cache-dir', this.settings.cacheDir, '--skip-java-db-update'];
    if (command === 'image') args.push('--skip-check-update');
    args.push('--skip-version-check', '--disable-telemetry');
    // auto updates apart from scans (TrivyDb), so scans, like false, never touch the DB.
    if (this.settings.dbUpdate !== true) args.push('--skip-db-update', '--offline-scan');
    else for (const repository of this.db.repositories) args.push('--db-repository', repository);
    return args;
  }

  /** Only what Trivy needs; the server token travels by environment, never argv. */
  private env(): NodeJS.ProcessEnv {
    const env = toolEnv();
    if (this.settings.serverToken) env.TRIVY_TOKEN = this.settings.serverToken;
    if (this.settings.dockerConfigDir) env.DOCKER_CONFIG = this.settings.dockerConfigDir;
    return env;
  }

  /**
   * A CycloneDX SBOM of `reference` (one platform manifest, pinned by digest), read from
   * its registry, written to `outFile`. Needs no vulnerability DB: with `--format
   * cyclonedx` and no `--scanners`, Trivy v0.74 runs its SBOM scanner only and never
   * opens or downloads the DB (pkg/flag/options.go enableSBOM; pkg/commands/artifact
   * run.go skips DB init without the vuln scanner). Always local and `--offline-scan`
   * (no Maven lookups for jars), even in client/server mode: there is nothing to ask a
   * server for.
   */
  async generateSbom(reference: string, outFile: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    // An in-memory layer cache: the on-disk one is a bolt file that one Trivy run holds
    // locked from start to end, so a concurrent scan or SBOM would wait 5 s and then fail
    // ("cache may be in use by another process"). Pushed layers are new anyway.
    const args = [
      'image',
      ...this.commonArgs('image'),
      '--cache-backend',
      'memory',
      '--image-src',
      'remote',
      '--format',
      'cyclonedx',
      '--output',
      outFile,
    ];
    if (!args.includes('--offline-scan')) args.push('--offline-scan');
    const registry = parseImageReference(reference).registry;
    if (!isLoopbackRegistry(registry) && this.settings.insecureRegistries.includes(registry)) args.push('--insecure');
    args.push('--', reference);
    const env = this.env();
    delete env.TRIVY_TOKEN;
    try {
      await this.runner.run(this.settings.trivy, args, { signal: options.signal, timeoutMs: options.timeoutMs ?? 600_000, env });
    } catch (err) {
      throw classify(err);
    }
  }
}

/** The JSON report, listing every package (named policies read them). */
const reportArgs = (reportFile: string) => ['--format', 'json', '--output', reportFile, '--list-all-pkgs'];

/** Which findings the report keeps, and the VEX statements applied to them. */
function filterArgs(options: Pick<ScanOptions, 'severity' | 'ignoreUnfixed' | 'vexFile'>): string[] {
  const args: string[] = [];
  if (options.severity?.length) args.push('--severity', options.severity.join(','));
  if (options.ignoreUnfixed) args.push('--ignore-unfixed');
  // Without --show-suppressed the JSON report drops what VEX set aside (pkg/report/json.go),
  // and the gate could no longer say which exception allowed which finding.
  if (options.vexFile) args.push('--vex', options.vexFile, '--show-suppressed');
  return args;
}

function classify(err: unknown, serverUrl?: string): unknown {
  if (!(err instanceof ProcessError) || err.kind !== 'exit') return err;
  const text = err.stderrTail;
  // Client/server mode: the client reaches the server over Twirp. An unreachable server,
  // a wrong token ("twirp error unauthenticated: invalid token") or a failure on the
  // server's side is the scanner being unavailable, not a problem with the image (and
  // these messages say "image scan error", so they must not reach the checks below).
  if (serverUrl && /twirp error|unauthenticated|invalid token/i.test(text))
    return new ScannerUnavailableError(`Trivy server ${serverUrl} cannot scan: ${lastLine(text)}`);
  if (/MANIFEST_UNKNOWN|NAME_UNKNOWN|not found|404/i.test(text) && /image/i.test(text))
    return new TrivyScanError(`image not found: ${lastLine(text)}`, true);
  if (/DB|database|--skip-db-update|server/i.test(text)) return new ScannerUnavailableError(`trivy cannot scan: ${lastLine(text)}`);
  return new TrivyScanError(`trivy failed: ${lastLine(text)}`, false);
}
