import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pluginDocs } from '../../src/plugins/plugin-docs.js';

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/plugins.md');

test('docs/plugins.md is generated from the plugin definitions (run `npm run docs` after changing a plugin)', () => {
  expect(fs.readFileSync(DOCS, 'utf8')).toBe(pluginDocs());
});
