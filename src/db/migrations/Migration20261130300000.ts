import { Migration } from '@mikro-orm/migrations';

/**
 * The web console's sign-in: sessions (a row per browser, found by the digest of its cookie, so
 * logout and revocation take effect at once on every replica) and one-time sign-in links the chat
 * bot sends (kept as digests; consumed once, by a POST).
 */
export class Migration20261130300000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table console_sessions (
      id_digest text primary key,
      kind text not null check (kind in ('account', 'token', 'person')),
      account_id uuid null references accounts(id) on delete cascade,
      token_id uuid null references api_tokens(id) on delete cascade,
      email text null,
      csrf text not null,
      created_at timestamptz not null default now(),
      last_seen_at timestamptz not null default now(),
      expires_at timestamptz not null,
      constraint console_sessions_subject check (
        (kind = 'account' and account_id is not null) or (kind = 'token' and token_id is not null) or (kind = 'person' and email is not null)))`);
    this.addSql(`create index console_sessions_expiry on console_sessions (expires_at)`);
    this.addSql(`create table console_login_links (
      digest text primary key,
      email text not null,
      door text not null,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null,
      used_at timestamptz null)`);
  }
}
