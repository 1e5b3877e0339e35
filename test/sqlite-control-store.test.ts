import { after } from 'node:test';
import { SqliteControlStore } from '../src/store/sqlite-control-store.js';
import { controlStoreContract } from './control-store-contract.js';
import { tempDir } from './helpers.js';

const dirs: { remove(): void }[] = [];
after(() => {
  for (const d of dirs) d.remove();
});

// Two handles on one file: what two processes sharing a data directory see.
controlStoreContract('SQLite, two handles on one file', async () => {
  const dir = tempDir();
  dirs.push(dir);
  return { a: new SqliteControlStore({ dataDir: dir.path }), b: new SqliteControlStore({ dataDir: dir.path }) };
});
