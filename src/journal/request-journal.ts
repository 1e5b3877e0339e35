import type { JournalEntry, JournalQuery, JournalStore } from '../store/journal-store.js';

/** Entries kept by default: enough for a test run's story, small enough to list at once. */
export const DEFAULT_JOURNAL_SIZE = 1_000;

/** How often (wall ms) a local journal writes its new entries behind to the store. */
export const JOURNAL_SAVE_EVERY_MS = 5_000;

/**
 * Entries written per turn of the event loop while saving: one short transaction each, so a
 * save never holds up the requests arriving meanwhile by more than a fraction of a millisecond.
 */
const SAVE_SLICE = 50;

export interface RequestJournalOptions {
  /**
   * This process alone writes the store (SQLite: a data directory has one writer). The newest
   * `size` entries are then kept in memory and listed from there, and written behind to the
   * store (docs/decisions.md, "The request journal on SQLite"). Otherwise (Redis, shared by
   * instances) every entry goes to the store and lists read the store.
   */
  local?: boolean;
  /** Local: how often new entries are written behind (wall ms). */
  saveEveryMs?: number;
  /** Local: a write-behind that failed (the entries stay listed; the next save tries again). */
  onSaveError?: (err: unknown) => void;
}

/**
 * The last N inbound Graph requests, as WireMock's request journal keeps them: what a bot
 * really sent, what it got, and which fault (if any) answered.
 */
export class RequestJournal {
  private readonly local: boolean;
  private readonly saveEveryMs: number;
  private readonly onSaveError: (err: unknown) => void;
  /** Local: a ring of the newest `size` entries; `next` is where the next one goes. */
  private readonly ring: (JournalEntry | undefined)[];
  private next = 0;
  private count = 0;
  /** Local: entries recorded since the last save began (only the newest `size` of them matter). */
  private unsaved = 0;
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> | undefined;
  /** Bumped by clear(): a save that began before it writes nothing more. */
  private generation = 0;

  constructor(
    private readonly store: JournalStore,
    readonly size: number = DEFAULT_JOURNAL_SIZE,
    options: RequestJournalOptions = {},
  ) {
    this.local = options.local ?? false;
    this.saveEveryMs = options.saveEveryMs ?? JOURNAL_SAVE_EVERY_MS;
    this.onSaveError = options.onSaveError ?? (() => {});
    this.ring = this.local ? new Array<JournalEntry | undefined>(size) : [];
  }

  /** Local: reads what the store kept (a previous run's requests) into memory. */
  async load(): Promise<void> {
    if (!this.local) return;
    const stored = await this.store.listRequests({ limit: this.size });
    for (let i = stored.length - 1; i >= 0; i--) this.push(stored[i] as JournalEntry);
  }

  /**
   * Local: the entry is listed at once and written behind (a kill -9 loses at most the last
   * `saveEveryMs` of entries, never the calls' own writes); it costs the request no write, and
   * returns nothing (there is nothing left to fail; no promise per request). Otherwise: the
   * store's append.
   */
  record(entry: JournalEntry): Promise<void> | undefined {
    if (!this.local) return this.store.appendRequest(entry, this.size);
    this.push(entry);
    this.unsaved++;
    if (!this.timer && !this.saving) {
      this.timer = setTimeout(() => this.startSave(), this.saveEveryMs);
      this.timer.unref();
    }
    return undefined;
  }

  async list(query: Omit<JournalQuery, 'limit'> & { limit?: number }): Promise<JournalEntry[]> {
    const limit = Math.min(query.limit ?? this.size, this.size);
    if (!this.local) return this.store.listRequests({ ...query, limit });
    const out: JournalEntry[] = [];
    for (let i = 0; i < this.count && out.length < limit; i++) {
      const e = this.ring[(this.next - 1 - i + this.size) % this.size] as JournalEntry;
      if (query.callId !== undefined && e.callId !== query.callId) continue;
      if (query.appId !== undefined && e.appId !== query.appId) continue;
      out.push({ ...e });
    }
    return out;
  }

  async clear(): Promise<void> {
    if (this.local) {
      this.generation++;
      this.ring.fill(undefined);
      this.next = 0;
      this.count = 0;
      this.unsaved = 0;
      await this.saving;
    }
    await this.store.clearRequests();
  }

  /** Local: writes what is not yet in the store (before the store closes). */
  async flush(): Promise<void> {
    if (!this.local) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.saving;
    if (this.unsaved > 0) await this.save();
  }

  private push(entry: JournalEntry): void {
    this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.size;
    if (this.count < this.size) this.count++;
  }

  private startSave(): void {
    this.timer = undefined;
    this.saving = this.save()
      .catch((err: unknown) => this.onSaveError(err))
      .finally(() => {
        this.saving = undefined;
        if (this.unsaved > 0 && !this.timer) {
          this.timer = setTimeout(() => this.startSave(), this.saveEveryMs);
          this.timer.unref();
        }
      });
  }

  /** Writes the newest of the unsaved entries, oldest first, a slice per turn of the event loop. */
  private async save(): Promise<void> {
    const n = Math.min(this.unsaved, this.count);
    this.unsaved = 0;
    const generation = this.generation;
    const entries: JournalEntry[] = [];
    for (let i = n; i >= 1; i--) entries.push(this.ring[(this.next - i + this.size) % this.size] as JournalEntry);
    for (let at = 0; at < entries.length; at += SAVE_SLICE) {
      if (generation !== this.generation) return;
      try {
        await Promise.all(entries.slice(at, at + SAVE_SLICE).map((e) => this.store.appendRequest(e, this.size)));
      } catch (err) {
        // What was not written is written by the next save (if still among the newest).
        if (generation === this.generation) this.unsaved += entries.length - at;
        throw err;
      }
    }
  }
}
