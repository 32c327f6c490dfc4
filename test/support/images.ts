import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProcess } from '../../src/engines/process-runner.js';
import { TOOLS } from './env.js';

/**
 * Builds and pushes a two-platform image (linux/amd64 + linux/arm64) with the real
 * buildctl. FROM scratch + COPY needs no emulation, so it works without qemu.
 */
export async function pushTwoPlatformImage(buildkitAddress: string, ref: string): Promise<void> {
  const context = mkdtempSync(join(tmpdir(), 'stv-multi-'));
  writeFileSync(join(context, 'hello.txt'), 'hello from two platforms\n');
  writeFileSync(
    join(context, 'Dockerfile'),
    'FROM scratch\nCOPY hello.txt /hello.txt\nENV API_TOKEN=not-for-your-eyes GREETING=hi\n' +
      'LABEL org.opencontainers.image.title=multi\nCMD ["/hello"]\n',
  );
  await runProcess(
    TOOLS.buildctl,
    [
      '--addr',
      buildkitAddress,
      'build',
      '--frontend',
      'dockerfile.v0',
      '--local',
      `context=${context}`,
      '--local',
      `dockerfile=${context}`,
      '--opt',
      'platform=linux/amd64,linux/arm64',
      '--output',
      `type=image,name=${ref},push=true`,
    ],
    { timeoutMs: 120_000 },
  );
}
