/**
 * Shorter values are not masked: a 1-3 character secret would turn every `a`, `on` or
 * `123` in a build log into `***` (and say which short strings the secret is made of).
 * Such secrets are refused nowhere; they are just not protected in logs.
 */
export const MIN_MASKED_LENGTH = 4;
export const MASK = '***';

/**
 * Replaces the known secret values of one job (the tenant and server build secrets it
 * mounted) with `***` in every string of what it writes: log lines, step events,
 * progress, results and errors. A RUN step may print a secret; BuildKit passes its
 * output through verbatim, and without this it would sit in the event stream and the
 * job record for the retention time. Values are matched as whole strings, every
 * occurrence, longest first (so a secret containing another is masked whole); a
 * multi-line value is also matched line by line, as logs arrive one line at a time.
 * Only the values themselves: a secret printed encoded (base64, hex) is not caught.
 */
export class SecretMasker {
  private values: string[] = [];

  add(values: Iterable<string>): void {
    const all = new Set(this.values);
    for (const value of values) {
      for (const candidate of [value, value.trim(), ...value.split(/\r?\n/).map((l) => l.trim())]) {
        if (candidate.length >= MIN_MASKED_LENGTH) all.add(candidate);
      }
    }
    this.values = [...all].sort((a, b) => b.length - a.length);
  }

  get active(): boolean {
    return this.values.length > 0;
  }

  mask(text: string): string {
    let out = text;
    for (const value of this.values) if (out.includes(value)) out = out.split(value).join(MASK);
    return out;
  }

  /** Every string inside plain JSON-like data (keys included), masked; other values as they are. */
  maskDeep<T>(data: T): T {
    if (!this.active) return data;
    return this.walk(data) as T;
  }

  private walk(value: unknown): unknown {
    if (typeof value === 'string') return this.mask(value);
    if (Array.isArray(value)) return value.map((v) => this.walk(v));
    if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [this.mask(k), this.walk(v)]));
    }
    return value;
  }
}
