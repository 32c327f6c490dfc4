import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { isAllowedHost, isBlockedAddress, normalizeHost, resolveAll } from '../net/address-policy.js';

/**
 * SSRF guard for job callback URLs: a webhook may not reach a blocked address
 * (net/address-policy.ts) unless its host is listed in STEVEDORE_WEBHOOK_ALLOWED_HOSTS.
 * Checked at submission (assertCallbackAllowed; admission reports the refusal on
 * callback_url) and again at connect time, after DNS resolution (guardedLookup), so a
 * name that later resolves to 127.0.0.1 is still refused.
 */

const hostOf = (url: URL) => normalizeHost(url.hostname);

/** A callback URL the guard refuses; the message says why. */
export class CallbackRefused extends Error {}

/**
 * Why a callback URL is refused, or undefined when it may be called. Resolves the host
 * (all addresses; 3 s limit): every address must be allowed.
 */
export async function callbackProblem(raw: string, allowedHosts: readonly string[]): Promise<string | undefined> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http(s) URL';
  if (url.username || url.password) return 'must not carry credentials';
  const host = hostOf(url);
  if (isAllowedHost(host, allowedHosts)) return undefined;
  if (isIP(host)) return isBlockedAddress(host) ? `${host} is a loopback, private, link-local, multicast or reserved address` : undefined;
  const addresses = await resolveAll(host).catch(() => undefined);
  if (!addresses?.length) return `${host} does not resolve`;
  const bad = addresses.find((a) => isBlockedAddress(a.address));
  return bad ? `${host} resolves to ${bad.address}, a loopback, private, link-local, multicast or reserved address` : undefined;
}

/**
 * The submission-time check: throws CallbackRefused with the problem as its message.
 * (The connect-time half is guardedLookup, used by the sender.)
 */
export async function assertCallbackAllowed(url: string, allowedHosts: readonly string[]): Promise<void> {
  const problem = await callbackProblem(url, allowedHosts);
  if (problem) throw new CallbackRefused(problem);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http(s).request that refuses blocked addresses after resolution (the
 * connect-time half of the guard; DNS may have changed since submission).
 */
export function guardedLookup(allowedHosts: readonly string[]) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const list = addresses;
      const allowed = isAllowedHost(hostname, allowedHosts);
      const bad = allowed ? undefined : list.find((a) => isBlockedAddress(a.address));
      if (bad)
        return callback(
          Object.assign(new CallbackRefused(`refused: ${hostname} resolves to ${bad.address} (SSRF guard)`), { code: 'ECALLBACKREFUSED' }),
          '',
        );
      if (options.all) return callback(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };
}
