import type { SessionRedis } from './session.js';

/** Login attempts per client address and window before 429; then the rest of the window is waited out. */
export const LOGIN_ATTEMPTS = 5;
export const LOGIN_WINDOW_SECONDS = 60;

// One round trip, atomic: count the attempt, start the window on the first, and answer
// the seconds left when over the limit (0 when the attempt may go ahead).
const ATTEMPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]); ttl = tonumber(ARGV[2]) end
  return ttl
end
return 0
`;

/**
 * Limits dashboard logins per client address, in Redis so the limit holds across every
 * api process. Each attempt is counted before the token is checked (parallel guesses
 * cannot slip past the count), and a successful login clears the address's count.
 * The address is the connection's (Fastify's request.ip; no proxy header is trusted).
 */
export class LoginLimiter {
  constructor(
    private readonly redis: SessionRedis,
    private readonly attempts = LOGIN_ATTEMPTS,
    private readonly windowSeconds = LOGIN_WINDOW_SECONDS,
  ) {}

  /** 0 when this attempt may be checked; otherwise the seconds until the address may try again. */
  async attempt(address: string): Promise<number> {
    const wait = await this.redis.eval(ATTEMPT, 1, key(address), this.attempts, this.windowSeconds);
    return Number(wait);
  }

  async succeeded(address: string): Promise<void> {
    await this.redis.del(key(address));
  }
}

const key = (address: string) => `stv:ui:login-attempts:${address}`;
