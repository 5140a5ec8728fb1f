import { Migration } from '@mikro-orm/migrations';

/**
 * Accounts (username and password, a platform role, namespaces), their sessions (one row per JWT,
 * so logout and account changes revoke at once) and failed-login counts (throttling shared by
 * every replica).
 */
export class Migration20261130280000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table accounts (
      id uuid primary key,
      username text not null,
      password_hash text not null,
      role text not null check (role in ('viewer', 'executor', 'editor', 'admin')),
      email text null,
      namespaces text[] null,
      disabled boolean not null default false,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      last_login_at timestamptz null,
      constraint accounts_username_lower check (username = lower(username)),
      constraint accounts_email_lower check (email = lower(email)))`);
    this.addSql(`create unique index accounts_username on accounts (username)`);
    this.addSql(`create unique index accounts_email on accounts (email) where email is not null`);
    this.addSql(`create table auth_sessions (
      id uuid primary key,
      account_id uuid not null references accounts(id) on delete cascade,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null)`);
    this.addSql(`create index auth_sessions_account on auth_sessions (account_id)`);
    this.addSql(`create table login_failures (
      scope text not null check (scope in ('username', 'ip')),
      key text not null,
      window_start timestamptz not null,
      failures integer not null,
      throttled_at timestamptz null,
      primary key (scope, key))`);
  }
}
