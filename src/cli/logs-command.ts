import { formatLogLine } from '../core/logs/log-format.js';

/** Imports nothing of the database or server: this command only talks to the HTTP API. */

const POLL_MS = 1000;

interface StreamLine { timestamp: string; level: string; source: string; group: string; message: string; executionId: string; taskType: string }
interface StreamPage { id: string; lines: StreamLine[]; nextOffset: string; hasMore: boolean; finished: boolean }

export interface LogsIo {
  env: NodeJS.ProcessEnv;
  out(text: string): void;
  err(text: string): void;
}

/**
 * `flowgate logs <runId> [--follow]`: pages through GET /sfp/api/flows/{id}/logs/stream, printing
 * each line once. Exit codes: 0 done, 1 the server refused or could not be reached, 2 misuse.
 */
export async function logsCommand(cmd: { runId: string; follow: boolean }, io: LogsIo): Promise<number> {
  const token = io.env.FLOWGATE_TOKEN?.trim();
  if (!token) {
    io.err('flowgate: FLOWGATE_TOKEN is not set: the logs command needs an API token (see `flowgate token create`)\n');
    return 2;
  }
  let base: URL;
  try {
    base = new URL(io.env.FLOWGATE_URL?.trim() || 'http://127.0.0.1:8080');
    if (!/^https?:$/.test(base.protocol)) throw new Error('not http');
  } catch {
    io.err(`flowgate: FLOWGATE_URL "${io.env.FLOWGATE_URL}" is not an http(s) URL\n`);
    return 2;
  }

  let offset = '';
  for (;;) {
    const url = new URL(`${base.pathname.replace(/\/$/, '')}/sfp/api/flows/${encodeURIComponent(cmd.runId)}/logs/stream`, base);
    if (offset) url.searchParams.set('logOffset', offset);
    let page: StreamPage;
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
      const body = await res.json().catch(() => undefined);
      if (!res.ok) {
        const message = body?.message ?? res.statusText;
        io.err(`flowgate: ${res.status} ${Array.isArray(message) ? message.join('; ') : message}\n`);
        return 1;
      }
      page = body as StreamPage;
    } catch (err) {
      io.err(`flowgate: cannot read logs from ${base.origin}: ${(err as Error).message}\n`);
      return 1;
    }
    // Lines of child runs carry their run, so an orchestrator's interleaved output stays readable.
    const text = page.lines.map((l) => (l.executionId === page.id ? '' : `{${l.taskType} ${l.executionId}} `) + formatLogLine(l) + '\n').join('');
    if (text) io.out(text);
    offset = page.nextOffset;
    if (page.finished || (!cmd.follow && !page.hasMore)) return 0;
    if (!page.hasMore) await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
