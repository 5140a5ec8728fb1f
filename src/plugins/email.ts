import { createTransport } from 'nodemailer';
import { z } from 'zod';
import { redact } from '../core/secrets.js';
import { StepFailure } from '../engine/step-failure.js';
import { inputOf, plugin } from './plugin.js';

const URL_SETTING = 'FLOWGATE_SMTP_URL';
const FROM_SETTING = 'FLOWGATE_SMTP_FROM';
const TIMEOUT_MS = 60_000;
/** Nodemailer's codes for failures that happen again as they are: credentials, envelope, message. */
const FINAL_CODES = new Set(['EAUTH', 'ENOAUTH', 'ECONFIG', 'EENVELOPE', 'EMESSAGE', 'EREQUIRETLS', 'EMAXRECIPIENTS']);

/** The mail server and sender the operator set, and the strings no message may show. */
interface SmtpSettings {
  host: string;
  port?: number;
  secure: boolean;
  auth?: { user: string; pass: string };
  from: string;
  /** The password in every form it may take on the wire or in the setting. */
  secrets: Record<string, string>;
}

const address = z.email({ error: 'not an email address' });

/**
 * FLOWGATE_SMTP_URL (`smtp://user:pass@host:port`: STARTTLS when the server offers it;
 * `smtps://`: TLS from the start) and FLOWGATE_SMTP_FROM (`ops@acme.io` or `Ops <ops@acme.io>`,
 * by default `flowgate@<host>`). Read when a step runs, as the catalogue reads `setting:` needs;
 * a missing or bad setting fails the step for good, naming it.
 */
function smtpSettings(env: Record<string, string | undefined>): SmtpSettings {
  const raw = env[URL_SETTING]?.trim();
  if (!raw) throw new StepFailure(`${URL_SETTING} is not set on this server`, false);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new StepFailure(`${URL_SETTING} is not a URL (expected smtp://user:password@host:port or smtps://…)`, false);
  }
  let user: string;
  let pass: string;
  try {
    [user, pass] = [decodeURIComponent(url.username), decodeURIComponent(url.password)];
  } catch {
    throw new StepFailure(`${URL_SETTING} has a bad %-escape in its user name or password`, false);
  }
  // The whole setting, and the password as written, encoded, and as AUTH PLAIN / LOGIN send it.
  const secrets: Record<string, string> = { url: raw };
  if (pass) Object.assign(secrets, { pass, written: url.password, base64: Buffer.from(pass).toString('base64'), plain: Buffer.from(`\0${user}\0${pass}`).toString('base64') });
  const bad = (why: string) => new StepFailure(redact(`${URL_SETTING} ${why}`, secrets), false);
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw bad(`must start with smtp:// or smtps://, not ${url.protocol}//`);
  if (!url.hostname) throw bad('names no host');
  // Options in the query are not read: refused rather than silently ignored.
  if (url.search || (url.pathname && url.pathname !== '/')) throw bad('takes no path or query options');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const fromSetting = env[FROM_SETTING]?.trim();
  const from = fromSetting || `flowgate@${host}`;
  if (!address.safeParse(/<([^<>]+)>$/.exec(from)?.[1] ?? from).success) {
    throw new StepFailure(fromSetting ? `${FROM_SETTING} is not an email address (expected ops@acme.io or Ops <ops@acme.io>)` : `${FROM_SETTING} is not set and flowgate@${host} is not an address; set it`, false);
  }
  return {
    host, port: url.port ? Number(url.port) : undefined, secure: url.protocol === 'smtps:',
    ...(user || pass ? { auth: { user, pass } } : {}), from, secrets,
  };
}

const addresses = z.union([address, z.array(address).min(1).max(50)]);
const emailInput = z.strictObject({
  to: addresses, cc: addresses.optional(), replyTo: address.optional(),
  subject: z.string().trim().min(1).max(255).regex(/^[^\r\n]*$/, 'a single line'),
  text: z.string().min(1).max(1_000_000).optional(), html: z.string().min(1).max(1_000_000).optional(),
}).refine((i) => i.text !== undefined || i.html !== undefined, { message: 'give text, html or both (both: the reader\'s mail client picks one)', path: ['text'] });

const emailOutput = z.object({ messageId: z.string(), accepted: z.array(z.string()), rejected: z.array(z.string()) });

/** An error from the mail server or the connection to it, as a step failure (passwords removed). */
function mailFailure(err: unknown, secrets: Record<string, string>, where: string): StepFailure {
  const e = err as { message?: string; code?: string; responseCode?: number; permanent?: boolean; cause?: { name?: string } };
  const timedOut = e.code === 'EABORT' && e.cause?.name === 'TimeoutError';
  const why = timedOut ? 'timed out' : String(e.message ?? err).split('\n')[0];
  // A reply code decides (nodemailer's `permanent`: 5xx but 503, per RFC 5321); a 4xx, a lost
  // connection or a timeout may pass. Without one, a bad message or login stays bad.
  const final = e.responseCode !== undefined ? e.permanent === true : FINAL_CODES.has(e.code ?? '');
  return new StepFailure(redact(`sending mail through ${where} failed: ${why}`, secrets), !final);
}

export const emailSmtp = plugin({
  id: 'email.smtp', name: 'Email (SMTP)', category: 'protocol',
  description: 'Sends an email through the mail server of FLOWGATE_SMTP_URL (`smtp://user:password@host:port`, STARTTLS when offered, or `smtps://`), '
    + 'from FLOWGATE_SMTP_FROM (by default `flowgate@<host of the URL>`): `to` and `cc` are one address or a list; `text`, `html` or both. '
    + 'A 5xx refusal fails the step for good; a 4xx reply, a lost connection or a timeout is retried per the step\'s retry. '
    + '`{messageId, accepted, rejected}`; the password shows in no output, log line or error.',
  input: emailInput, output: emailOutput, credentials: true, effectful: true, requires: [`setting:${URL_SETTING}`],
  run: async (c) => {
    const i = inputOf(c, emailInput, { credentials: true });
    const s = smtpSettings(process.env);
    const hide = { ...c.credentials, ...s.secrets };
    const where = `${s.host}${s.port ? `:${s.port}` : ''}`;
    const budget = Math.max(1, Math.min(TIMEOUT_MS, c.deadline === undefined ? Infinity : c.deadline - Date.now()));
    const transport = createTransport({
      host: s.host, port: s.port, secure: s.secure, auth: s.auth,
      connectionTimeout: budget, greetingTimeout: budget, socketTimeout: budget, dnsTimeout: budget,
      logger: false, debug: false,
    });
    try {
      const sent = await transport.sendMail({
        from: s.from, to: i.to, cc: i.cc, replyTo: i.replyTo, subject: i.subject, text: i.text, html: i.html,
        signal: AbortSignal.timeout(budget),
      });
      const out = { messageId: sent.messageId, accepted: sent.accepted.map(String), rejected: sent.rejected.map(String) };
      c.note(out.rejected.length ? 'warn' : 'info', redact(`Mail "${i.subject}" sent through ${where} as ${out.messageId}: accepted ${out.accepted.join(', ') || 'none'}${out.rejected.length ? `; rejected ${out.rejected.join(', ')}` : ''}`, hide));
      return JSON.parse(redact(JSON.stringify(out), hide)) as z.infer<typeof emailOutput>;
    } catch (err) {
      throw mailFailure(err, hide, where);
    } finally {
      transport.close();
    }
  },
});
