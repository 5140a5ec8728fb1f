import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = path.resolve(here, '../artifacts');

/**
 * Debian's Chromium, driven by playwright-core (never a downloaded browser). Playwright adds
 * --no-sandbox as root, --headless and the background-networking switches itself.
 */
export async function launchChromium(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--disable-gpu', '--disable-quic', '--disable-sync'],
  });
  // playwright-core is pinned to the release built for this Chromium; say so when Debian moves on.
  const pkg = path.dirname(require.resolve('playwright-core/package.json'));
  const want = (JSON.parse(readFileSync(path.join(pkg, 'browsers.json'), 'utf8')).browsers as Array<{ name: string; browserVersion: string }>)
    .find((b) => b.name === 'chromium')!.browserVersion;
  const major = (v: string) => Number(v.split('.')[0]);
  if (Math.abs(major(browser.version()) - major(want)) > 3)
    console.warn(`Chromium ${browser.version()} is far from playwright-core's ${want}: pin the playwright-core release built for it`);
  return browser;
}

export interface AxeViolation { id: string; impact: string | null; help: string; nodes: Array<{ target: string[] }> }

/** axe-core injected into the page; the serious and critical violations. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated over the devtools protocol, not added as a script tag: the console's CSP stays on.
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const result = await page.evaluate(async () => (window as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe.run());
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A full-page screenshot under test/artifacts/ (ignored by git) for a reviewer to look at. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
