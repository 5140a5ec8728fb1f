import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Router from '@koa/router';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

/** The console's own files live beside its source (copied into dist by the build); htmx comes from its package. */
function ownAsset(name: string): Buffer {
  for (const dir of [join(here, 'assets'), join(here, '..', '..', 'src', 'console', 'assets')]) {
    try {
      return readFileSync(join(dir, name));
    } catch { /* try the next place */ }
  }
  throw new Error(`console asset ${name} is missing`);
}

const HTMX_VERSION: string = require('htmx.org/package.json').version;

interface Asset { body: Buffer; type: string }

/** Asset URLs carry a version, so browsers may keep them forever. */
export const ASSET_VERSION = `${HTMX_VERSION}-1`;
export const assetUrl = (name: string) => `/console/assets/${ASSET_VERSION}/${name}`;

let loaded: Map<string, Asset> | undefined;
function assets(): Map<string, Asset> {
  return (loaded ??= new Map([
    ['htmx.min.js', { body: readFileSync(require.resolve('htmx.org/dist/htmx.min.js')), type: 'text/javascript; charset=utf-8' }],
    ['console.js', { body: ownAsset('console.js'), type: 'text/javascript; charset=utf-8' }],
    ['console.css', { body: ownAsset('console.css'), type: 'text/css; charset=utf-8' }],
  ]));
}

export function mountAssets(router: Router): void {
  router.get('/console/assets/:version/:name', (ctx) => {
    const asset = assets().get(ctx.params.name);
    if (!asset || ctx.params.version !== ASSET_VERSION) {
      ctx.status = 404;
      ctx.type = 'text/plain';
      ctx.body = 'No such console asset';
      return;
    }
    ctx.type = asset.type;
    ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.body = asset.body;
  });
}
