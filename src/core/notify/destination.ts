import type { Callback } from '../../db/entities/run.js';
import type { Notice, NoticeOutcome } from './notice.js';

/**
 * A kind of place a run talks back to (Slack thread, GitHub issue, Azure DevOps work item).
 * Each door provides one; the notifier picks it by the callback's type.
 */
export interface Destination {
  type: Callback['type'];
  notify(callback: Callback, notice: Notice): Promise<NoticeOutcome>;
}
