// npm run docs: regenerates README's table of serve options and callkeeper.schema.json from
// src/cli/serve-options.ts (test/cli-options.test.ts fails when they are out of date).
import { readFileSync, writeFileSync } from 'node:fs';
import { configSchemaText, readmeWithOptionsTable } from '../src/cli/option-files.js';

const root = new URL('..', import.meta.url);
const readme = new URL('README.md', root);
writeFileSync(readme, readmeWithOptionsTable(readFileSync(readme, 'utf8')));
writeFileSync(new URL('callkeeper.schema.json', root), configSchemaText());
console.log('README.md (serve options) and callkeeper.schema.json are up to date');
