import type { Logger } from 'pino';
import type { Services } from '../../container.js';
import type { Destination } from '../../core/notify/destination.js';
import type { Notice, NoticeOutcome, NoticeRun } from '../../core/notify/notice.js';
import type { Callback } from '../../db/entities/run.js';
import { noticeRun } from '../../core/notify/notice-run.js';
import type { SlackChat } from './chat.js';
import { approvalMessage, runCard, runFinishedReply, runMessage, type ApprovalView, type FlowRef } from './messages.js';

/** A flow type's display name (the id when the registry no longer has it). */
export const flowRef = (s: Services, id: string | undefined): FlowRef => ({ id: id ?? 'unknown', name: (id && s.registry.find(id)?.name) || id || 'unknown' });

/**
 * Runs started from Slack talk back in the thread of their run card: approval requests (edited
 * as votes and decisions arrive), notify steps, and the result (with the card edited).
 */
export class SlackDestination implements Destination {
  readonly type = 'slack' as const;

  constructor(private readonly s: Services, private readonly chat: SlackChat, private readonly log: Logger) {}

  async notify(callback: Callback, notice: Notice): Promise<NoticeOutcome> {
    const channel = typeof callback.slack?.channel === 'string' ? callback.slack.channel : undefined;
    const threadTs = typeof callback.slack?.threadTs === 'string' ? callback.slack.threadTs : undefined;
    if (!channel || !threadTs) return { delivered: false, reason: 'the Slack callback names no channel and thread' };
    switch (notice.event) {
      case 'approval.requested': {
        const a = notice.approval as ApprovalView;
        const messageTs = await this.chat.post(channel, approvalMessage(a, this.flow(notice, a), notice.run), threadTs);
        return { delivered: true, posted: { slack: { channel, threadTs, messageTs } } };
      }
      case 'approval.updated': {
        const a = notice.approval as ApprovalView;
        const posted = (a.context.callback as { slack?: { channel?: string; messageTs?: string } } | undefined)?.slack;
        // Not recorded yet: the request is being posted right now. The update workflow retries on a throw.
        if (!posted?.messageTs) throw new Error(`updating the Slack message of approval ${a.id}: the request has not been posted yet`);
        await this.chat.update(posted.channel ?? channel, posted.messageTs, approvalMessage(a, this.flow(notice, a), notice.run));
        return { delivered: true };
      }
      case 'run.message':
        await this.chat.post(channel, runMessage(notice.message ?? ''), threadTs);
        return { delivered: true };
      case 'run.finished': {
        const run = await this.finishedRun(notice);
        const flow = flowRef(this.s, run.taskType);
        await this.chat.post(channel, runFinishedReply(run, flow), threadTs);
        await this.updateCard(channel, threadTs, run, flow);
        return { delivered: true };
      }
      default:
        return { delivered: false, reason: `${notice.event} notices are not shown in Slack` };
    }
  }

  /** The card heading the thread shows the run's end; child runs share the thread but not the card. */
  async updateCard(channel: string, threadTs: string, run: NoticeRun, flow: FlowRef): Promise<void> {
    const parent = run.parentRunId !== undefined ? run.parentRunId : (await this.s.store.findById(run.id))?.parentRunId;
    if (parent) return;
    try {
      await this.chat.update(channel, threadTs, runCard(run, flow));
    } catch (err) {
      // A thread started elsewhere (a REST caller's callback) has no card of ours to edit.
      this.log.info({ err, runId: run.id }, 'the run card could not be updated');
    }
  }

  private flow(notice: Notice, a: ApprovalView): FlowRef {
    return flowRef(this.s, notice.taskType ?? notice.run?.taskType ?? ((a.context as Record<string, unknown>).taskType as string | undefined));
  }

  /** The run as the notice carries it, else as stored (a cancel's notice names only the run). */
  private async finishedRun(n: Notice): Promise<NoticeRun> {
    if (n.run) return n.run;
    const stored = n.runId ? await this.s.store.findById(n.runId) : null;
    if (stored) return noticeRun(stored);
    return {
      id: n.runId ?? 'unknown', taskType: n.taskType ?? 'unknown', status: n.status ?? 'unknown', triggeredBy: '', repositoryIdentifier: n.repositoryIdentifier ?? '',
      payload: {}, result: n.result, error: n.error ?? null,
    };
  }
}
