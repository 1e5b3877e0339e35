export class DuplicateCallError extends Error {
  constructor(id: string) {
    super(`a call with id ${id} already exists`);
    this.name = 'DuplicateCallError';
  }
}

/**
 * The store could not be reached or did not answer (a network error, a timeout, a Redis
 * failover, a locked or broken file). Nothing is known to have changed; the HTTP layer
 * answers 503 with Retry-After, never 500.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'StoreUnavailableError';
  }
}

/** Another callkeeper already owns this store (the SQLite single-writer rule). */
export class StoreLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreLockedError';
  }
}

/** The store is reachable but set up in a way this instance cannot run on (a shard count that differs). */
export class StoreConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreConfigError';
  }
}
