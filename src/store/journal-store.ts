/** One inbound Graph request as the journal keeps it. */
export interface JournalEntry {
  /** Virtual epoch ms the request arrived. */
  at: number;
  method: string;
  path: string;
  /** The status answered; null when a fault reset the connection. */
  status: number | null;
  /** Wall-clock milliseconds from arrival to the last byte. */
  latencyMs: number;
  appId: string | null;
  callId: string | null;
  requestId: string;
  clientRequestId: string;
  /** The id of the fault rule applied, or 'throttle'; null: none. */
  fault: string | null;
}

export interface JournalQuery {
  callId?: string;
  appId?: string;
  limit: number;
}

/** The request journal, shared by every instance on the store. */
export interface JournalStore {
  /** Appends an entry; the store keeps at least the newest `keep` entries and may drop older ones. */
  appendRequest(entry: JournalEntry, keep: number): Promise<void>;

  /** Entries newest first, filtered by call and app. */
  listRequests(query: JournalQuery): Promise<JournalEntry[]>;

  /** Deletes every entry. */
  clearRequests(): Promise<void>;
}
