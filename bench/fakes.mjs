// The fakes of the end-to-end tests, loaded from their TypeScript sources: each file is transpiled
// to ESM with @swc/core into a scratch directory (keeping its place under test/, so relative imports
// between them resolve) and imported from there.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import swc from '@swc/core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FILES = ['test/fakes/slack.ts', 'test/fakes/github.ts', 'test/support/recorder.ts'];

export async function loadFakes() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-bench-fakes-'));
  try {
    for (const file of FILES) {
      const { code } = swc.transformFileSync(path.join(ROOT, file), {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' }, sourceMaps: false, swcrc: false,
      });
      const out = path.join(dir, file.replace(/\.ts$/, '.js'));
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, code);
    }
    const load = (file) => import(pathToFileURL(path.join(dir, file.replace(/\.ts$/, '.js'))).href);
    const [slack, github, recorder] = await Promise.all(FILES.map(load));
    return { ...slack, ...github, ...recorder };
  } finally {
    // Loaded modules stay in memory; the files are no longer needed.
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
