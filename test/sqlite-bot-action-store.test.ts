import assert from 'node:assert/strict';
import { after, test } from 'node:test';
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
  // A second connection on the same file (the single-writer lock is for servers).
  async (first) => sqlite(new SqliteCallStore({ dataDir: dirs.get(first.calls as SqliteCallStore)?.path ?? '', singleWriter: false })),
);
after(() => {
  for (const dir of dirs.values()) dir.remove();
});

test('SQLite: a purged call takes its roster, operations and media state with it', async () => {
  const calls = new SqliteCallStore();
  const bots = new SqliteBotActionStore(calls);
  const T0 = Date.UTC(2026, 0, 1);
  const owner = { appId: 'a', tenantId: 't' };
  await calls.create({
    id: 'c1',
    owner,
    state: 'establishing',
    direction: 'outgoing',
    createdAt: T0,
    deadline: T0 + 60_000,
    establishAt: T0,
    resource: {},
  });
  await calls.establishDue(T0, 10);
  const scope = { callId: 'c1', owner, now: T0 };
  await bots.join(scope, [
    {
      id: 'p1',
      callId: 'c1',
      info: {},
      isBot: false,
      isMuted: false,
      serverMuted: false,
      isInLobby: false,
      sharingScreen: false,
      recordingStatus: null,
      metadata: null,
      joinedAt: T0,
    },
  ]);
  await bots.tones(scope, ['tone1']);
  const count = () =>
    ['participants', 'operations', 'call_media'].map((t) =>
      calls.database.prepare(`SELECT count(*) FROM ${t} WHERE call_id = 'c1'`).pluck().get(),
    );
  assert.deepEqual(count(), [1, 0, 1]);
  await calls.end('c1', null, T0, { code: 200, subcode: 7000, message: 'bye' });
  assert.deepEqual(count(), [1, 0, 1], 'kept while the ended call is kept');
  await calls.purgeEnded(T0, 10);
  assert.deepEqual(count(), [0, 0, 0]);
  await calls.close();
});
