import fs from 'node:fs';

export default async function globalTeardown() {
  const held = globalThis.__flowgatePg;
  if (!held) return;
  await held.pg.stop();
  fs.rmSync(held.dir, { recursive: true, force: true });
}
