import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { runProcess } from '../../src/engines/process-runner.js';

/**
 * Test hosts in a network namespace of the test's own: a veth pair whose host end is
 * named `vethstv…` (the build firewall does not count such links as the host's LAN) and
 * whose namespace end holds the given addresses, each with an HTTP listener on port 80
 * answering `body`. Stands in for a metadata service (169.254.169.254), a neighbour on a
 * private network, or "the outside world" (a TEST-NET address), without sending a packet
 * off this machine.
 */
export interface TestHosts {
  /** Connections each address received (by address). */
  hits: Map<string, number>;
  stop(): Promise<void>;
}

const ip = (...args: string[]) => runProcess('ip', args, { timeoutMs: 10_000 });

/** `hosts`: namespace address → host-side address on the same /24 (the route back). */
export async function startTestHosts(hosts: { address: string; gateway: string; body: string }[]): Promise<TestHosts> {
  const id = randomBytes(3).toString('hex');
  const ns = `stv-test-${id}`;
  const [outer, inner] = [`vethstv${id}`, `vethin${id}`];
  const listeners: ChildProcess[] = [];
  const hits = new Map<string, number>(hosts.map((h) => [h.address, 0]));
  const stop = async () => {
    for (const l of listeners) l.kill('SIGKILL');
    await ip('link', 'del', outer).catch(() => undefined);
    await ip('netns', 'del', ns).catch(() => undefined);
  };
  try {
    await ip('netns', 'add', ns);
    await ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
    await ip('link', 'set', inner, 'netns', ns);
    await ip('link', 'set', outer, 'up');
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', inner, 'up');
    for (const h of hosts) {
      await ip('addr', 'add', `${h.gateway}/24`, 'dev', outer);
      await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${h.address}/24`, 'dev', inner);
    }
    // Replies go back through the host, whichever source they answer.
    await ip('netns', 'exec', ns, 'ip', 'route', 'add', 'default', 'dev', inner);
    for (const h of hosts) {
      const script =
        `require('node:http').createServer((q,s)=>{process.stdout.write('hit\\n');s.end(${JSON.stringify(h.body)})})` +
        `.listen(80,${JSON.stringify(h.address)},()=>process.stdout.write('ready\\n'))`;
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      listeners.push(child);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`test host ${h.address} did not start`)), 10_000);
        child.stdout.on('data', (chunk: Buffer) => {
          for (const line of chunk.toString().split('\n')) {
            if (line === 'ready') {
              clearTimeout(timer);
              resolve();
            }
            if (line === 'hit') hits.set(h.address, (hits.get(h.address) ?? 0) + 1);
          }
        });
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { hits, stop };
}
