import { formatLogLine } from '../core/logs/log-format.js';
import type { ApiClient, CliIo } from './api-client.js';

const POLL_MS = 1000;

interface StreamLine { timestamp: string; level: string; source: string; group: string; message: string; executionId: string; taskType: string }
interface StreamPage { id: string; lines: StreamLine[]; nextOffset: string; hasMore: boolean; finished: boolean }

/**
 * `flowgate logs <runId> [--follow]`: pages through GET /sfp/api/flows/{id}/logs/stream, printing
 * each line once. Returns when the run has finished (with --follow) or nothing more is there.
 */
export async function logsCommand(cmd: { runId: string; follow: boolean }, api: ApiClient, io: CliIo): Promise<number> {
  let offset = '';
  for (;;) {
    const query = offset ? `?logOffset=${encodeURIComponent(offset)}` : '';
    const page = await api.request<StreamPage>('GET', `/sfp/api/flows/${encodeURIComponent(cmd.runId)}/logs/stream${query}`);
    // Lines of child runs carry their run, so an orchestrator's interleaved output stays readable.
    const text = page.lines.map((l) => (l.executionId === page.id ? '' : `{${l.taskType} ${l.executionId}} `) + formatLogLine(l) + '\n').join('');
    if (text) io.out(text);
    offset = page.nextOffset;
    if (page.finished || (!cmd.follow && !page.hasMore)) return 0;
    if (!page.hasMore) await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
