/**
 * Where shared keeping lives in Redis. Every key of one namespace carries the same hash tag,
 * so a Redis Cluster keeps them in one slot and the scripts may touch several at once.
 */
export class SharedKeys {
  readonly replicas: string;
  readonly leases: string;
  readonly versions: string;
  readonly fence: string;
  readonly phase: string;
  /** Pub/sub channel: ended calls and nudges ("look now"). */
  readonly channel: string;
  private readonly base: string;

  constructor(namespace: string) {
    this.base = `callkeeper:keeper:{${namespace}}`;
    this.replicas = `${this.base}:replicas`;
    this.leases = `${this.base}:leases`;
    this.versions = `${this.base}:versions`;
    this.fence = `${this.base}:fence`;
    this.phase = `${this.base}:phase`;
    this.channel = `${this.base}:events`;
  }

  calls(bucket: number): string {
    return `${this.base}:calls:${bucket}`;
  }

  last(bucket: number): string {
    return `${this.base}:last:${bucket}`;
  }
}

/** FNV-1a, 32 bits, with a murmur3 finaliser so that near-identical strings land far apart. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function bucketOf(callId: string, buckets: number): number {
  return hash32(callId) % buckets;
}

/**
 * Which live replica each bucket belongs to: rendezvous hashing with bounded loads. Each
 * bucket ranks the replicas by a hash of (bucket, replica) and goes to the first in its ranking
 * that has fewer than ceil(buckets / replicas); so every replica gets the same share (within one
 * bucket), every replica computes the same map from the same live set, and a join or a leave
 * moves little more than the buckets the newcomer takes or the leaver held.
 */
export function assignBuckets(buckets: number, replicas: readonly string[]): (string | undefined)[] {
  const live = [...new Set(replicas)].sort();
  const out: (string | undefined)[] = new Array(buckets).fill(undefined);
  if (live.length === 0) return out;
  const cap = Math.ceil(buckets / live.length);
  const load = new Map(live.map((r) => [r, 0]));
  for (let b = 0; b < buckets; b++) {
    const ranked = live.map((r) => [hash32(`${b}:${r}`), r] as const).sort((x, y) => y[0] - x[0] || (x[1] < y[1] ? -1 : 1));
    for (const [, r] of ranked) {
      const n = load.get(r) ?? 0;
      if (n < cap) {
        load.set(r, n + 1);
        out[b] = r;
        break;
      }
    }
  }
  return out;
}
