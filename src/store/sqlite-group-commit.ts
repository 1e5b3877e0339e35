import type Database from 'better-sqlite3';

interface Pending {
  work: () => unknown;
  savepoint: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for a better-sqlite3 connection: writes handed in during one turn of the event
 * loop (a burst of keepAlives parsed from many sockets in one poll phase) run together in one
 * transaction, committed once, right after that turn (setImmediate). Each caller's promise
 * settles only after the transaction holding its write has committed, so nothing is
 * acknowledged before it is in the WAL: a kill -9 loses no answered write, as with one
 * transaction per write. What a batch saves is the per-commit cost (WAL frame headers, the
 * write syscalls, the WAL index update), paid once per batch instead of once per request.
 *
 * Writes are isolated from each other: each runs in its own savepoint (or is one statement,
 * which SQLite undoes alone when it fails), so one that throws (a duplicate id) rolls back alone
 * and rejects its own promise; the rest of the batch commits.
 * If the commit itself fails (disk full), every write of the batch is rejected.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly batch: (items: Pending[]) => { ok: boolean; value: unknown }[];
  /** Batches committed and writes carried, for the bench and the tests. */
  readonly stats = { batches: 0, writes: 0, largest: 0 };

  constructor(
    db: Database.Database,
    private readonly maxBatch = 2_000,
    private readonly afterCommit: (writes: number) => void = () => {},
  ) {
    // A nested better-sqlite3 transaction is a SAVEPOINT: it rolls back alone when it throws.
    const one = db.transaction((work: () => unknown) => work());
    this.batch = db.transaction((items: Pending[]) =>
      items.map((p) => {
        try {
          return { ok: true, value: p.savepoint ? one(p.work) : p.work() };
        } catch (err) {
          return { ok: false, value: err };
        }
      }),
    );
  }

  /**
   * Runs `work` (synchronous SQLite statements) in the next group transaction; resolves with
   * its result once that has committed. `oneStatement`: the work is a single statement, atomic
   * by itself, so it needs no savepoint (the keepAlive's UPDATE).
   */
  run<T>(work: () => T, oneStatement = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, savepoint: !oneStatement, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits what is queued now (also called before a close, so nothing queued is dropped). */
  flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const items = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
      this.queue = items === this.queue ? [] : this.queue.slice(this.maxBatch);
      let results: { ok: boolean; value: unknown }[];
      try {
        results = this.batch(items);
      } catch (err) {
        for (const p of items) p.reject(err);
        continue;
      }
      this.stats.batches += 1;
      this.stats.writes += items.length;
      this.stats.largest = Math.max(this.stats.largest, items.length);
      this.afterCommit(items.length);
      results.forEach((r, i) => {
        const p = items[i];
        if (!p) return;
        if (r.ok) p.resolve(r.value);
        else p.reject(r.value);
      });
    }
  }
}
