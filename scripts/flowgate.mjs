#!/usr/bin/env node
// `npm run flowgate -- …`: the CLI, built first when dist/ is missing or older than src/ (a fresh
// checkout, or sources changed since the last build), so it never runs stale or absent code.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const entry = path.join(dist, 'cli', 'index.js');
// Written after a build made here: tsc may leave unchanged outputs untouched.
const stamp = path.join(dist, '.build-stamp');

/** The newest modification time of the files under `dir` (0 when there are none). */
function newest(dir) {
  let max = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) max = Math.max(max, fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  return max;
}

function stale() {
  if (!fs.existsSync(entry)) return true;
  if (!fs.existsSync(path.join(root, 'src'))) return false; // an image with dist/ only
  const sources = Math.max(newest(path.join(root, 'src')), ...['tsconfig.json', 'tsconfig.build.json'].map((f) => fs.statSync(path.join(root, f)).mtimeMs));
  return sources > newest(dist);
}

if (stale()) {
  const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
  if (!fs.existsSync(tsc)) {
    process.stderr.write(`flowgate: ${fs.existsSync(entry) ? 'dist/ is older than src/' : 'dist/ is not built'} and TypeScript is not installed: run npm install (or npm run build)\n`);
    process.exit(1);
  }
  process.stderr.write('flowgate: building dist/ first (src/ changed since the last build)…\n');
  const built = spawnSync(tsc, ['-p', 'tsconfig.build.json'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  // tsc writes its output even with type errors elsewhere: the CLI can usually still run.
  if (!fs.existsSync(entry)) {
    process.stderr.write('flowgate: the build failed (above); fix it or run npm run build\n');
    process.exit(1);
  }
  if (built.status !== 0) process.stderr.write('flowgate: the build reported errors (above); running the CLI as built\n');
  fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
}

await import(pathToFileURL(entry).href);
