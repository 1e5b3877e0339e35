/** Small shared values every instance must agree on (signing keys). */
export interface SettingsPort {
  /**
   * The value stored under `key`, storing `value` first if there is none. Concurrent callers
   * all get the same winner.
   */
  getOrInitSetting(key: string, value: string): Promise<string>;

  /** The value stored under `key`, if any. */
  getSetting(key: string): Promise<string | undefined>;

  /** Stores `value` under `key`, replacing what was there. */
  putSetting(key: string, value: string): Promise<void>;
}
