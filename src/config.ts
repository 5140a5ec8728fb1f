import fs from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { allowListProblems, splitAllowList } from './core/net/outbound-policy.js';
import { readEncryptionKeys, type EncryptionKeys } from './core/credentials/encryption-keys.js';

/** Credentials referenced by flows as `credentials.NAME` come from `FLOWGATE_CREDENTIAL_NAME`. */
const CREDENTIAL_PREFIX = 'FLOWGATE_CREDENTIAL_';

const port = z.coerce.number().int().min(1).max(65535);
const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL');

const envSchema = z.object({
  // 0 picks a free port (tests).
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: postgresUrl.optional(),
  FLOWGATE_SYSTEM_DATABASE_URL: postgresUrl.optional(),
  FLOWGATE_DATA_DIR: z.string().min(1).default('.flowgate'),
  FLOWGATE_EMBEDDED_PG_PORT: port.default(54329),
  FLOWGATE_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  FLOWGATE_EXECUTOR_ID: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only').optional(),
  FLOWGATE_MANIFESTS_DIR: z.string().min(1).default('manifests/flows'),
  FLOWGATE_PUBLIC_URL: z.url().optional(),
  /** Behind a reverse proxy: the client's address is X-Forwarded-For's (login throttling counts per address). */
  FLOWGATE_TRUST_PROXY: z.enum(['true', 'false'], { error: 'true or false' }).default('false'),
  FLOWGATE_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  FLOWGATE_CICD_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  /** Comma-separated CIDRs, addresses and host names that flows, payloads and callers may reach although not public. */
  FLOWGATE_OUTBOUND_ALLOW: z.string().transform(splitAllowList).superRefine((entries, ctx) => {
    for (const problem of allowListProblems(entries)) ctx.addIssue({ code: 'custom', message: problem });
  }).optional(),
  FLOWGATE_EXECUTION_TOKEN_TTL_HOURS: z.coerce.number().positive().max(24 * 30, 'at most 720 hours').default(24),
  FLOWGATE_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10000),
  FLOWGATE_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(30000),
  FLOWGATE_SCHEDULER_POLL_MS: z.coerce.number().int().min(100).default(5000),
  /** Which engine carries flow runs: `dbos` (per-run workflows) or `v2` (the set-based executor on Flowgate's tables). */
  FLOWGATE_ENGINE: z.enum(['dbos', 'v2']).default('v2'),
  /** `off`: this process serves HTTP, doors and notices and leaves executing v2 runs to the replicas that have it on. */
  FLOWGATE_EXECUTOR: z.enum(['on', 'off']).default('on'),
  FLOWGATE_ACTIVE_RUNS: z.coerce.number().int().min(1).max(10_000).default(32),
  /** How long a cached token or project may be served at most (changes reach every replica sooner, by NOTIFY); 0 = no cache. */
  FLOWGATE_CACHE_TTL_MS: z.coerce.number().int().min(0).max(600_000, 'at most 600000 ms').default(5_000),
  /** How long an Engine v2 claim holds a run without a heartbeat: a dead replica's runs move on after this. */
  FLOWGATE_LEASE_MS: z.coerce.number().int().min(1000, 'at least 1000 ms').max(600_000, 'at most 600000 ms').default(30_000),
  /** How far past its live size V8 lets the heap grow before a full collection, in percent; 0 = V8's own choice (up to 300). */
  FLOWGATE_HEAP_GROWTH_PERCENT: z.coerce.number().int().min(0).max(300, 'at most 300 (V8 grows by at most 4×)').default(100),
  FLOWGATE_RETENTION_DAYS: z.coerce.number().int().min(1, 'at least 1 day').default(90),
  /** Signs account JWTs (HS256); without it the /auth routes answer 503. */
  FLOWGATE_JWT_SECRET: z.string().refine((v) => Buffer.byteLength(v) >= 32, 'must be at least 32 bytes').optional(),
  /** The secret before a rotation: its tokens still verify, none are signed with it. */
  FLOWGATE_JWT_SECRET_PREVIOUS: z.string().refine((v) => Buffer.byteLength(v) >= 32, 'must be at least 32 bytes').optional(),
  FLOWGATE_JWT_TTL: z.string().transform((v, ctx) => {
    const seconds = durationSeconds(v);
    if (seconds === undefined || seconds < 300 || seconds > 7 * 86_400) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30m, 12h or 7d, from 5m to 7d' });
      return z.NEVER;
    }
    return seconds;
  }).default(12 * 3600),
  FLOWGATE_AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1, 'at least 1 day').default(365),
  /** Seals stored credentials (AES-256-GCM): 32 bytes as 64 hex or base64; unset, the credential routes answer 503. */
  FLOWGATE_ENCRYPTION_KEY: z.string().optional(),
  /** Comma-separated earlier keys: they still decrypt rows until the sweep (or `credentials rotate-key`) re-encrypts them. */
  FLOWGATE_ENCRYPTION_KEYS_PREVIOUS: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Slack door
  SLACK_BOT_TOKEN: z.string().regex(/^xox[a-z]-/, 'must be a Slack bot token (xoxb-…)').optional(),
  SLACK_SIGNING_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  SLACK_API_URL: z.url().default('https://slack.com/api/'),
  /** Where the pagerduty.event plugin sends events (Events API v2). */
  PAGERDUTY_EVENTS_URL: z.url().default('https://events.pagerduty.com/v2/enqueue'),
  /** The Opsgenie API the opsgenie.alert plugin calls (EU accounts: https://api.eu.opsgenie.com). */
  OPSGENIE_API_URL: z.url().default('https://api.opsgenie.com'),
  SLACK_COMMAND: z.string().regex(/^\/[a-z0-9_-]+$/, 'a slash command such as /flowgate').default('/flowgate'),
  // GitHub door
  GITHUB_APP_ID: z.string().regex(/^\d+$/, 'must be the numeric app id').optional(),
  GITHUB_PRIVATE_KEY: z.string().includes('PRIVATE KEY', { message: 'must be a PEM private key' }).optional(),
  GITHUB_PRIVATE_KEY_PATH: z.string().min(1).optional(),
  GITHUB_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** The previous secret, accepted too while a rotation is under way. */
  GITHUB_WEBHOOK_SECRET_PREVIOUS: z.string().min(16, 'must be at least 16 characters').optional(),
  GITHUB_API_URL: z.url().default('https://api.github.com'),
  // Azure DevOps door
  AZURE_DEVOPS_ORG_URL: z.url().optional(),
  AZURE_DEVOPS_TOKEN: z.string().min(1).optional(),
  AZURE_DEVOPS_HOOK_USERNAME: z.string().min(1).optional(),
  AZURE_DEVOPS_HOOK_PASSWORD: z.string().min(16, 'must be at least 16 characters').optional(),
  AZURE_DEVOPS_APPROVED_STATE: z.string().min(1).default('Approved'),
  AZURE_DEVOPS_REJECTED_STATE: z.string().min(1).default('Rejected'),
});

type Env = z.infer<typeof envSchema>;

/** `90s`, `30m`, `12h`, `7d` → seconds. */
function durationSeconds(v: string): number | undefined {
  const m = /^(\d+)([smhd])$/.exec(v.trim());
  return m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'] : undefined;
}

/**
 * A door is on when all its required settings are present, off when none are; a partial set is
 * a configuration error naming what is missing (a door never runs half-verified).
 */
function doorSettings<T>(env: Env, door: string, required: (keyof Env)[], build: () => T, problems: string[]): T | undefined {
  const present = required.filter((k) => env[k] !== undefined);
  if (present.length === 0) return undefined;
  const missing = required.filter((k) => env[k] === undefined);
  if (missing.length) {
    problems.push(...missing.map((k) => `${String(k)}: required for the ${door} door (set with ${present.join(', ')})`));
    return undefined;
  }
  return build();
}

export interface SlackSettings { botToken: string; signingSecret: string; apiUrl: string; command: string }
export interface GithubSettings { appId: string; privateKey: string; webhookSecrets: string[]; apiUrl: string }
/** Account sessions: JWTs signed with `secret`; `previousSecret` still verifies while rotating. */
export interface JwtSettings { secret: string; previousSecret?: string; ttlSeconds: number }
export interface AzureDevOpsSettings { orgUrl: string; token: string; hookUsername: string; hookPassword: string; approvedState: string; rejectedState: string }

export interface Config {
  port: number;
  host: string;
  /** Set when an external PostgreSQL is used; otherwise the embedded server's URL is filled in at start. */
  databaseUrl?: string;
  systemDatabaseUrl?: string;
  dataDir: string;
  embeddedPgPort: number;
  adminToken?: string;
  executorId: string;
  manifestsDir: string;
  publicUrl: string;
  /**
   * FLOWGATE_PUBLIC_URL as set, undefined when it is not: addresses handed to other machines
   * (a webhook trigger's URL) are only built from it, never from the local fallback of `publicUrl`.
   */
  configuredPublicUrl?: string;
  webhookSecret?: string;
  /** Where `webhook` CI/CD dispatches go when a manifest names no `cicd.url`. */
  cicdWebhookUrl?: string;
  /** Non-public CIDRs, addresses and host names outbound requests chosen by flows and callers may reach. */
  outboundAllow: string[];
  /** The client address of a request is X-Forwarded-For's (FLOWGATE_TRUST_PROXY). */
  trustProxy: boolean;
  /** Where the incident plugins send: PagerDuty's Events API v2 and Opsgenie's API. */
  incidentApis: { pagerdutyEventsUrl: string; opsgenieApiUrl: string };
  /** How long a CI/CD run's per-execution token is valid. */
  executionTokenTtlHours: number;
  shutdownTimeoutMs: number;
  /** How often expired external approvals and lost wake-ups are swept. */
  sweepIntervalMs: number;
  /** How soon schedule changes (new, paused, resumed, new expression) take effect. */
  schedulerPollMs: number;
  /** Runs this process starts at once; more wait, `queued`, in arrival order. */
  activeRuns: number;
  /** Whether this process executes v2 runs (FLOWGATE_EXECUTOR). */
  executes: boolean;
  /** Longest a cached token or project is served (a safety net behind the NOTIFY invalidation). */
  cacheTtlMs: number;
  /** How long an Engine v2 claim holds a run without a heartbeat (a dead replica's runs wait this long). */
  leaseMs: number;
  /** How far past its live size the heap may grow before a full collection, in percent (0: V8 decides). */
  heapGrowthPercent: number;
  /** Which engine carries flow runs (`v2`: the set-based executor). */
  engine: 'dbos' | 'v2';
  /** Finished runs (with steps, logs, approvals), door deliveries and expired tokens older than this are pruned. */
  retentionDays: number;
  /** Audit events older than this are pruned. */
  auditRetentionDays: number;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  credentials: Record<string, string>;
  /** The keys of stored credentials; absent: credential storage is off. */
  encryption?: EncryptionKeys;
  slack?: SlackSettings;
  github?: GithubSettings;
  azureDevOps?: AzureDevOpsSettings;
  /** Set with FLOWGATE_JWT_SECRET: accounts may log in (the /auth routes). */
  jwt?: JwtSettings;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads the configuration once from an environment object; every problem is reported by variable name. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // `PORT=` in a .env or compose file means "not set", not zero.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const slack = doorSettings(e, 'Slack', ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET'], () => ({
    botToken: e.SLACK_BOT_TOKEN!, signingSecret: e.SLACK_SIGNING_SECRET!, apiUrl: e.SLACK_API_URL.endsWith('/') ? e.SLACK_API_URL : `${e.SLACK_API_URL}/`, command: e.SLACK_COMMAND,
  }), problems);
  let githubKey = e.GITHUB_PRIVATE_KEY;
  if (!githubKey && e.GITHUB_PRIVATE_KEY_PATH) {
    try {
      githubKey = fs.readFileSync(e.GITHUB_PRIVATE_KEY_PATH, 'utf8');
    } catch (err) {
      problems.push(`GITHUB_PRIVATE_KEY_PATH: cannot read ${e.GITHUB_PRIVATE_KEY_PATH}: ${(err as Error).message}`);
    }
  }
  const github = doorSettings({ ...e, GITHUB_PRIVATE_KEY: githubKey }, 'GitHub', ['GITHUB_APP_ID', 'GITHUB_PRIVATE_KEY', 'GITHUB_WEBHOOK_SECRET'], () => ({
    appId: e.GITHUB_APP_ID!, privateKey: githubKey!, webhookSecrets: [e.GITHUB_WEBHOOK_SECRET!, ...(e.GITHUB_WEBHOOK_SECRET_PREVIOUS ? [e.GITHUB_WEBHOOK_SECRET_PREVIOUS] : [])],
    apiUrl: e.GITHUB_API_URL.replace(/\/$/, ''),
  }), problems);
  const azureDevOps = doorSettings(e, 'Azure DevOps', ['AZURE_DEVOPS_ORG_URL', 'AZURE_DEVOPS_TOKEN', 'AZURE_DEVOPS_HOOK_USERNAME', 'AZURE_DEVOPS_HOOK_PASSWORD'], () => ({
    orgUrl: e.AZURE_DEVOPS_ORG_URL!.replace(/\/$/, ''), token: e.AZURE_DEVOPS_TOKEN!, hookUsername: e.AZURE_DEVOPS_HOOK_USERNAME!, hookPassword: e.AZURE_DEVOPS_HOOK_PASSWORD!,
    approvedState: e.AZURE_DEVOPS_APPROVED_STATE, rejectedState: e.AZURE_DEVOPS_REJECTED_STATE,
  }), problems);
  if (e.FLOWGATE_JWT_SECRET_PREVIOUS && !e.FLOWGATE_JWT_SECRET) problems.push('FLOWGATE_JWT_SECRET_PREVIOUS: set only beside FLOWGATE_JWT_SECRET (the secret now in use)');
  const encryption = readEncryptionKeys(e);
  problems.push(...encryption.problems);
  if (problems.length) throw new ConfigError(problems);
  const credentials: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith(CREDENTIAL_PREFIX) && value !== undefined) credentials[key.slice(CREDENTIAL_PREFIX.length)] = value;
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    systemDatabaseUrl: e.FLOWGATE_SYSTEM_DATABASE_URL,
    dataDir: path.resolve(e.FLOWGATE_DATA_DIR),
    embeddedPgPort: e.FLOWGATE_EMBEDDED_PG_PORT,
    adminToken: e.FLOWGATE_ADMIN_TOKEN,
    executorId: e.FLOWGATE_EXECUTOR_ID ?? `flowgate-${hostname()}`,
    manifestsDir: path.resolve(e.FLOWGATE_MANIFESTS_DIR),
    publicUrl: e.FLOWGATE_PUBLIC_URL ?? `http://127.0.0.1:${e.PORT}`,
    configuredPublicUrl: e.FLOWGATE_PUBLIC_URL?.replace(/\/+$/, ''),
    webhookSecret: e.FLOWGATE_WEBHOOK_SECRET,
    cicdWebhookUrl: e.FLOWGATE_CICD_WEBHOOK_URL,
    outboundAllow: e.FLOWGATE_OUTBOUND_ALLOW ?? [],
    trustProxy: e.FLOWGATE_TRUST_PROXY === 'true',
    incidentApis: { pagerdutyEventsUrl: e.PAGERDUTY_EVENTS_URL, opsgenieApiUrl: e.OPSGENIE_API_URL.replace(/\/+$/, '') },
    executionTokenTtlHours: e.FLOWGATE_EXECUTION_TOKEN_TTL_HOURS,
    shutdownTimeoutMs: e.FLOWGATE_SHUTDOWN_TIMEOUT_MS,
    sweepIntervalMs: e.FLOWGATE_SWEEP_INTERVAL_MS,
    schedulerPollMs: e.FLOWGATE_SCHEDULER_POLL_MS,
    activeRuns: e.FLOWGATE_ACTIVE_RUNS,
    executes: e.FLOWGATE_EXECUTOR === 'on',
    cacheTtlMs: e.FLOWGATE_CACHE_TTL_MS,
    leaseMs: e.FLOWGATE_LEASE_MS,
    heapGrowthPercent: e.FLOWGATE_HEAP_GROWTH_PERCENT,
    engine: e.FLOWGATE_ENGINE,
    retentionDays: e.FLOWGATE_RETENTION_DAYS,
    auditRetentionDays: e.FLOWGATE_AUDIT_RETENTION_DAYS,
    logLevel: e.LOG_LEVEL,
    credentials,
    encryption: encryption.keys,
    slack,
    github,
    azureDevOps,
    jwt: e.FLOWGATE_JWT_SECRET ? { secret: e.FLOWGATE_JWT_SECRET, previousSecret: e.FLOWGATE_JWT_SECRET_PREVIOUS, ttlSeconds: e.FLOWGATE_JWT_TTL } : undefined,
  };
}

/** The DBOS system database lives beside the application database, in its own database. */
export function systemDatabaseUrlFor(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `${url.pathname.replace(/^\//, '') || 'flowgate'}_dbos`;
  return url.toString();
}
