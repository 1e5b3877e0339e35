import type { JournalEntry, JournalQuery, JournalStore } from '../store/journal-store.js';

/** Entries kept by default: enough for a test run's story, small enough to list at once. */
export const DEFAULT_JOURNAL_SIZE = 1_000;

/**
 * The last N inbound Graph requests, as WireMock's request journal keeps them: what a bot
 * really sent, what it got, and which fault (if any) answered.
 */
export class RequestJournal {
  constructor(
    private readonly store: JournalStore,
    readonly size: number = DEFAULT_JOURNAL_SIZE,
  ) {}

  record(entry: JournalEntry): Promise<void> {
    return this.store.appendRequest(entry, this.size);
  }

  list(query: Omit<JournalQuery, 'limit'> & { limit?: number }): Promise<JournalEntry[]> {
    return this.store.listRequests({ ...query, limit: Math.min(query.limit ?? this.size, this.size) });
  }

  clear(): Promise<void> {
    return this.store.clearRequests();
  }
}
