import { after } from 'node:test';
import { SqliteBotActionStore } from '../src/store/sqlite-bot-action-store.js';
import { SqliteCallStore } from '../src/store/sqlite-store.js';
import { botActionStoreContract } from './bot-action-store-contract.js';
import { tempDir } from './helpers.js';

const sqlite = (calls: SqliteCallStore) => ({ calls, bots: new SqliteBotActionStore(calls) });

botActionStoreContract('SQLite in memory', async () => sqlite(new SqliteCallStore()));

const dirs = new Map<SqliteCallStore, ReturnType<typeof tempDir>>();
botActionStoreContract(
  'SQLite on disk, two connections',
  async () => {
    const dir = tempDir();
    const calls = new SqliteCallStore({ dataDir: dir.path });
    dirs.set(calls, dir);
    return sqlite(calls);
  },
  async (first) => sqlite(new SqliteCallStore({ dataDir: dirs.get(first.calls as SqliteCallStore)?.path ?? '' })),
);
after(() => {
  for (const dir of dirs.values()) dir.remove();
});
