// tsc copies no .lua files: the Redis store's scripts go next to its compiled module.
import { cpSync } from 'node:fs';

cpSync('src/store/redis/lua', 'dist/store/redis/lua', { recursive: true });
