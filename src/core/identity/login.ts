import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';
import { AppError } from '../../errors.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { AccountService } from './accounts.js';
import { LoginThrottle } from './login-throttle.js';
import { verifyPassword } from './passwords.js';

export type LoginResult = 'success' | 'failure' | 'throttled';

/** One answer for an unknown name, a wrong password and a disabled account: it never says which. */
const REFUSED = 'invalid username or password';

export class LoginRefused extends AppError {
  constructor(readonly retryAfter?: number) {
    super(retryAfter === undefined ? 'authentication_required' : 'rate_limited',
      retryAfter === undefined ? REFUSED : `Too many failed logins; retry in ${retryAfter} s`);
  }
}

/**
 * Logs an account in: throttled per username and per address (failures only counted, never
 * audited), the password checked at the same cost whether the account exists or not, and a
 * session opened on success.
 */
export class LoginService {
  private readonly throttle: LoginThrottle;

  constructor(private readonly orm: MikroORM, private readonly accounts: AccountService, private readonly audit: AuditLog, private readonly counted: (result: LoginResult) => void) {
    this.throttle = new LoginThrottle(orm);
  }

  /**
   * The account behind a username and password, checked and throttled; every way of signing in with
   * a password (the /auth API, the console) comes through here.
   */
  async verify(username: string, password: string, ip: string, door = 'rest') {
    const name = username.toLowerCase();
    const throttled = await this.throttle.check(name, ip);
    if (throttled) {
      this.counted('throttled');
      for (const scope of throttled.firstTime)
        await this.audit.record({ name: 'anonymous', door }, 'auth.throttled', scope, scope === 'username' ? name : ip, { ip, retryAfter: throttled.retryAfter });
      throw new LoginRefused(throttled.retryAfter);
    }
    const account = await this.accounts.find(name);
    const matches = await verifyPassword(password, account?.password_hash ?? null);
    if (!account || !matches || account.disabled) {
      await this.throttle.failed(name, ip);
      this.counted('failure');
      throw new LoginRefused();
    }
    await this.throttle.succeeded(name);
    await sql(this.orm, 'update accounts set last_login_at = now() where id = ?', [account.id]);
    this.counted('success');
    await this.audit.record({ name: account.email ?? `user:${account.username}`, door }, 'auth.login', 'user', account.id, { username: account.username, ip });
    return account;
  }

  async login(username: string, password: string, ip: string) {
    const account = await this.verify(username, password, ip);
    const session = await this.accounts.sessions.open(account);
    return {
      token: session.token, expiresAt: session.expiresAt.toISOString(),
      user: { id: account.id, username: account.username, role: account.role, email: account.email, namespaces: account.namespaces },
    };
  }
}
