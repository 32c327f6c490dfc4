/**
 * A small least-recently-used cache bounded twice: by entries and by a total weight the
 * caller gives each value (for parsed reports: findings + packages, roughly their
 * memory). A value heavier than the whole budget is not kept. A Map keeps insertion
 * order, so re-inserting on each hit makes its first key the least recently used.
 */
export class LruCache<V> {
  private readonly entries = new Map<string, { value: V; weight: number }>();
  private total = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxWeight: number,
  ) {
    if (maxEntries < 1 || maxWeight < 1) throw new Error('an LRU cache needs room for at least one entry');
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** False when the value alone is over the weight budget (then it is not kept). */
  set(key: string, value: V, weight = 1): boolean {
    this.delete(key);
    if (weight > this.maxWeight) return false;
    this.entries.set(key, { value, weight });
    this.total += weight;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.total <= this.maxWeight) break;
      this.entries.delete(oldest);
      this.total -= entry.weight;
    }
    return true;
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.total -= entry.weight;
  }

  get size(): number {
    return this.entries.size;
  }

  get weight(): number {
    return this.total;
  }
}
