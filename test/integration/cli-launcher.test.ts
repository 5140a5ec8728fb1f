import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * `npm run flowgate -- …` in a fresh checkout (no dist/): it builds first, then runs the CLI; it
 * builds again only when the sources changed. Runs in a copy of the checkout, so the dist/ of
 * this one is left alone.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const TIMEOUT = 300_000;
let checkout: string;

interface Result { code: number; stdout: string; stderr: string }
function npmFlowgate(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile('npm', ['run', '--silent', 'flowgate', '--', ...args], { cwd: checkout, timeout: TIMEOUT }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

beforeAll(() => {
  checkout = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-checkout-'));
  for (const entry of ['src', 'scripts', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) {
    fs.cpSync(path.join(root, entry), path.join(checkout, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(checkout, 'node_modules'));
});
afterAll(() => {
  if (checkout) fs.rmSync(checkout, { recursive: true, force: true });
});

test('works without a prior build, and rebuilds only when the sources changed', async () => {
  expect(fs.existsSync(path.join(checkout, 'dist'))).toBe(false);
  const first = await npmFlowgate('help');
  expect(first.stdout).toContain('Usage: flowgate <command>');
  expect(first.code).toBe(0);
  expect(first.stderr).toMatch(/^flowgate: building dist\/ first/);
  expect(fs.existsSync(path.join(checkout, 'dist/cli/index.js'))).toBe(true);

  const second = await npmFlowgate('help');
  expect(second).toEqual({ code: 0, stdout: first.stdout, stderr: '' });

  // A source edited after the build: the next command builds again.
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(checkout, 'src/cli/args.ts'), later, later);
  const third = await npmFlowgate('token', 'bogus');
  expect(third.stderr).toMatch(/^flowgate: building dist\/ first/);
  expect(third.stderr).toContain('unknown subcommand "token bogus"');
  expect(third.code).toBe(2);
}, TIMEOUT);
