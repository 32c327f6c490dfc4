import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildctlArgs, pushedDockerfileSpec } from '../../src/engines/buildkit/build-command.js';
import { runProcess } from '../../src/engines/process-runner.js';
import { TOOLS } from './env.js';

/**
 * Builds and pushes `reference`, an image of about 300 MB (linux/amd64): the seeded base,
 * a copy of /usr (thousands of ELF files again) and 256 MiB of random data files. The
 * platform-check bench and the event-loop test use it as the largest image a tenant
 * would ordinarily bring.
 */
export async function pushBigImage(buildkitAddress: string, reference: string): Promise<void> {
  const ctx = mkdtempSync(join(tmpdir(), 'stv-big-image-'));
  try {
    writeFileSync(
      join(ctx, 'Dockerfile'),
      'FROM debian:bookworm-slim\nRUN cp -a /usr /usr-copy\n' +
        'RUN mkdir /data && for i in $(seq 1 64); do head -c 4194304 /dev/urandom > /data/f$i.bin; done\n',
    );
    await runProcess(
      TOOLS.buildctl,
      buildctlArgs(
        buildkitAddress,
        pushedDockerfileSpec(ctx, [reference], 'stv-big', { platforms: ['linux/amd64'], metadataFile: join(ctx, 'meta.json') }),
      ),
      { timeoutMs: 900_000 },
    );
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}
