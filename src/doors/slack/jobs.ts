import type { Services } from '../../container.js';
import type { Person, Verdict } from '../../core/approvals/approval-rules.js';
import type { ThreadRef } from '../../core/approvals/thread-lookup.js';
import { noticeRun } from '../../core/notify/notice-run.js';
import type { Run } from '../../db/entities/run.js';
import { AppError } from '../../errors.js';
import { LOGIN_LINK_TTL_MS } from '../../core/identity/login-links.js';
import { approvalOfThread, cancelForPerson, controlForPerson, decideForPerson, describeRun, startRunForPerson } from '../actions.js';
import { parseWords, type Command } from '../commands.js';
import { deliveryAttempt, step } from '../inbound.js';
import type { SlackChat } from './chat.js';
import { decidableBy } from './deciders.js';
import { flowRef, type SlackDestination } from './destination.js';
import { approvalsList, esc, helpText, runCard, signInLinkMessage } from './messages.js';
import { SlackPeople } from './people.js';

/** What a Slack delivery asks for, as stored for durable processing (never the raw request). */
export type SlackJob =
  | { kind: 'command'; text: string; user: string; channel: string; threadTs?: string }
  | { kind: 'approve'; approvalId: string; user: string; channel: string; threadTs?: string }
  | { kind: 'reject'; approvalId: string; user: string; reason: string };

interface Deps { s: Services; chat: SlackChat; people: SlackPeople; destination: SlackDestination; command: string }
type Where = { channel: string; user: string; threadTs?: string };

const DOOR = 'slack';

/**
 * Processes Slack deliveries after Slack has its answer (`inbound.ts`): every call to Slack or
 * the core that changes something is a named step, so a delivery processed again after a crash
 * neither posts, starts nor decides twice (a run's id derives from the delivery id; a decision is
 * taken once under the approval's row lock).
 */
export function slackJobs(d: Deps) {
  const reply = (to: Where, text: string) => step('reply', () => d.chat.ephemeral(to.channel, to.user, text, to.threadTs));
  // A read (cached): not recorded, since reading it again gives the same person.
  const person = (user: string) => d.people.resolve(user);

  /** Where an approval was posted: the modal has no thread of its own, so its answers go there. */
  const threadOf = (approvalId: string) => step('where', async () => {
    const posted = (await d.s.approvals.get(approvalId))?.chat.slack;
    return posted ? { channel: posted.channel, threadTs: posted.threadTs } : null;
  });

  async function decide(to: Where | null, user: string, approvalId: string, who: Person | null, verdict: Verdict, reason: string | null) {
    const outcome = who ? await step('decide', async () => {
      const r = await decideForPerson(d.s, approvalId, who, verdict, reason, DOOR);
      return r.ok ? { ok: true as const } : { ok: false as const, text: r.text };
    }) : { ok: false as const, text: SlackPeople.unknown(user) };
    if (outcome.ok) return;
    // Processed again after a crash that came between the decision and its record: this
    // person's own decision is there, which is no refusal to tell them about.
    if (who && deliveryAttempt() > 1 && (await d.s.approvals.get(approvalId))?.decisions.some((x) => x.email === who.email && x.verdict === verdict)) return;
    const where = to ?? await threadOf(approvalId);
    if (where) await reply({ ...where, user }, who ? esc(outcome.text) : outcome.text);
  }

  async function run(job: Extract<SlackJob, { kind: 'command' }>, to: Where, c: Extract<Command, { name: 'run' }>, who: Person, deliveryId: string) {
    const input = { flowType: c.flowType, params: c.params, person: who, deliveryId, door: DOOR };
    const checked = await step('check', async () => {
      const repo = c.repo ?? (await d.s.projects.list(null)).find((p) => p.slackChannel === job.channel)?.repositoryIdentifier;
      if (!repo) return { ok: false as const, text: `Which project? Add repo=&lt;owner/repo&gt;, or make this channel a project's default (its slackChannel ${job.channel}).` };
      const dry = await startRunForPerson(d.s, { ...input, repositoryIdentifier: repo, callback: { type: 'slack', slack: { channel: job.channel } }, dryRun: true });
      return dry.ok ? { ok: true as const, repo, run: noticeRun(dry.value) } : { ok: false as const, text: esc(dry.text) };
    });
    if (!checked.ok) return reply(to, checked.text);
    const flow = flowRef(d.s, checked.run.taskType);
    const cardTs = await step('card', () => d.chat.post(job.channel, runCard(checked.run, flow)));
    const started = await step('start', async () => {
      const r = await startRunForPerson(d.s, { ...input, repositoryIdentifier: checked.repo, callback: { type: 'slack', slack: { channel: job.channel, threadTs: cardTs } } });
      return r.ok ? { ok: true as const } : { ok: false as const, text: r.text };
    });
    if (started.ok) return;
    // Something changed between the check and the start (a project setting, say): the card says so.
    await step('card-failed', () => d.chat.update(job.channel, cardTs, runCard({ ...checked.run, status: 'failed', error: started.text }, flow)));
    await reply(to, esc(started.text));
  }

  async function command(job: Extract<SlackJob, { kind: 'command' }>, deliveryId: string) {
    const to: Where = { channel: job.channel, user: job.user, threadTs: job.threadTs };
    const parsed = parseWords(job.text);
    if (parsed.kind === 'ignore') return;
    if (parsed.kind === 'reply') return reply(to, esc(parsed.text));
    const c = parsed.command;
    if (c.name === 'help') return reply(to, helpText(d.command));
    const who = await person(job.user);
    if (!who) return reply(to, SlackPeople.unknown(job.user));
    switch (c.name) {
      case 'run':
        return run(job, to, c, who, deliveryId);
      case 'status':
      case 'cancel':
      case 'pause':
      case 'resume':
      case 'retry': {
        const runId = c.runId ?? await step('which', async () => (job.threadTs ? (await d.s.approvals.runsOfThread(slackThread(job)!))[0]?.id ?? null : null));
        if (!runId) return reply(to, `Which run? Usage: ${c.name} &lt;runId&gt;`);
        if (c.name === 'status') return reply(to, await step('status', async () => {
          const found = await findRun(d.s, runId);
          return found ? esc(describeRun(found)) : `No run ${esc(runId)}.`;
        }));
        const verb = c.name;
        return reply(to, await step(verb, async () => {
          const found = await findRun(d.s, runId);
          if (!found) return `No run ${esc(runId)}.`;
          if (verb === 'cancel') return cancel(found, who);
          const done = await controlForPerson(d.s, found, who, DOOR, verb);
          return esc(done.ok ? done.value : done.text);
        }));
      }
      case 'approvals': {
        const text = await step('approvals', async () => approvalsList((await decidableBy(d.s, who)).map((a) => ({ approval: a, flow: flowRef(d.s, (a.context as Record<string, unknown>).taskType as string | undefined) }))).text);
        return reply(to, text);
      }
      case 'login':
        return reply(to, await signInLink(job.user, who));
      case 'approve':
      case 'reject': {
        if (!job.threadTs) return reply(to, `Use the Approve and Reject buttons on the request, or mention @Flowgate with \`${c.name}\` in its thread.`);
        const found = await step('find', async () => {
          const target = await approvalOfThread(d.s, slackThread(job)!, c.approvalId, (id) => `\`@Flowgate ${c.name} ${id}${c.name === 'reject' ? ' <reason>' : ''}\``);
          return target.ok ? { ok: true as const, id: target.approval.id } : target;
        });
        if (!found.ok) return reply(to, esc(found.text));
        return decide(to, job.user, found.id, who, c.name, c.name === 'reject' ? c.reason : null);
      }
    }
  }

  /**
   * Sends a one-time console link by DM. One step, whose recorded result holds no secret: only
   * the link's digest is kept, and processed again it would send a fresh link, never the old one.
   */
  function signInLink(user: string, who: Person): Promise<string> {
    return step('login', async () => {
      let link: { secret: string; expiresAt: Date };
      try {
        link = await d.s.loginLinks.issue(who.email, DOOR);
      } catch (err) {
        if (err instanceof AppError && err.code === 'rate_limited') return esc(err.message);
        throw err;
      }
      try {
        const dm = await d.chat.openDirectMessage(user);
        await d.chat.post(dm, signInLinkMessage(`${d.s.config.publicUrl}/console/login/link/${link.secret}`, link.expiresAt));
      } catch (err) {
        // The link is never shown anywhere else; unused, it expires.
        return `I could not send you a direct message (${esc((err as Error).message)}), so no sign-in link was sent. The bot needs the im:write scope.`;
      }
      return `I sent you a sign-in link for the Flowgate console by direct message. It works once, within ${LOGIN_LINK_TTL_MS / 60_000} minutes.`;
    });
  }

  /** Cancels for a person; the core tells the run's thread (card and result), as for a cancel from anywhere. */
  async function cancel(run: Run, who: Person): Promise<string> {
    const r = await cancelForPerson(d.s, run, who, DOOR);
    if (!r.ok) return esc(r.text);
    return `Cancelled ${run.taskType} run ${run.id}${r.value.length > 1 ? ` and ${r.value.length - 1} run(s) it started` : ''}.`;
  }

  return async function handle(payload: unknown, deliveryId: string): Promise<void> {
    const job = payload as SlackJob;
    if (job.kind === 'command') return command(job, deliveryId);
    const who = await person(job.user);
    if (job.kind === 'approve') return decide({ channel: job.channel, user: job.user, threadTs: job.threadTs }, job.user, job.approvalId, who, 'approve', null);
    return decide(null, job.user, job.approvalId, who, 'reject', job.reason);
  };
}

/** The thread a command was posted in, as the core looks threads up. */
const slackThread = (job: { channel: string; threadTs?: string }): ThreadRef | null => (job.threadTs ? { kind: 'slack', channel: job.channel, threadTs: job.threadTs } : null);

async function findRun(s: Services, id: string): Promise<Run | null> {
  try {
    return await s.runs.get(id);
  } catch (err) {
    if (err instanceof AppError && err.status === 404) return null;
    throw err;
  }
}

