import { randomInt } from 'node:crypto';
import { GenericContainer, Wait } from 'testcontainers';
import { runProcess } from '../../src/engines/process-runner.js';
import { testImages } from './env.js';
import type { StartedRegistry } from './services.js';

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A bcrypt hash (what the registry's htpasswd file holds) from the system's crypt(3):
 * Debian's libxcrypt does bcrypt and perl-base (Essential) calls it, so no npm package
 * and no apache2-utils are needed. The password travels in the environment, not argv.
 */
export async function bcryptHash(password: string): Promise<string> {
  // 22 salt characters; the last carries only 2 bits, so it must be one of . O e u.
  const salt = Array.from({ length: 21 }, () => BCRYPT_ALPHABET[randomInt(64)]).join('') + '.Oeu'[randomInt(4)];
  const { stdout } = await runProcess('perl', ['-e', 'print crypt($ENV{STV_HTPASSWD_PASSWORD}, $ARGV[0])', `$2b$05$${salt}`], {
    env: { PATH: process.env.PATH, STV_HTPASSWD_PASSWORD: password },
  });
  if (!/^\$2b\$05\$[./A-Za-z0-9]{53}$/.test(stdout)) throw new Error("this system's crypt(3) cannot make bcrypt hashes");
  return stdout;
}

/** The test registry image, empty, requiring HTTP basic auth (htpasswd) for everything. */
export async function startAuthRegistry(username: string, password: string): Promise<StartedRegistry> {
  const container = await new GenericContainer(testImages().registry)
    .withEnvironment({
      REGISTRY_AUTH: 'htpasswd',
      REGISTRY_AUTH_HTPASSWD_REALM: 'stevedore-test',
      REGISTRY_AUTH_HTPASSWD_PATH: '/etc/docker/registry/htpasswd',
    })
    .withCopyContentToContainer([
      { content: `${username}:${await bcryptHash(password)}\n`, target: '/etc/docker/registry/htpasswd', mode: 0o644 },
    ])
    .withExposedPorts(5000)
    .withWaitStrategy(Wait.forHttp('/v2/', 5000).forStatusCode(401))
    .start();
  return { container, address: `127.0.0.1:${container.getMappedPort(5000)}` };
}
