import type { MikroORM } from '@mikro-orm/postgresql';
import type { LogLevel } from '../../db/entities/log-line.js';
import { validationFailed } from '../../errors.js';
import type { RunStatus } from '../status.js';
import { allTerminal, loadLogTree, type LogRun } from './log-tree.js';

export const STREAM_LIMIT = 1000;

export interface StreamLine {
  seq: number;
  timestamp: string;
  level: LogLevel;
  source: string;
  group: string;
  message: string;
  executionId: string;
  taskType: string;
}

export interface StreamPage {
  status: RunStatus;
  lines: StreamLine[];
  nextOffset: string;
  /** More lines are available right now (the response was capped): poll again at once. */
  hasMore: boolean;
  /**
   * Every run of the tree is terminal and every line has been returned. A run's closing line is
   * written in the transaction that ends it, so nothing a live reader follows comes after this.
   */
  finished: boolean;
}

type Offsets = Record<string, number>;

const badOffset = (message: string, field = 'logOffset') => validationFailed([{ field, message, location: 'query' }]);

/**
 * `logOffset`: a plain run's last seen seq as a decimal, or (once it has children) base64url of
 * JSON `{runId: lastSeq}`. A decimal always means the root, so a token handed out before the
 * first child appeared stays valid.
 */
export function parseOffset(raw: string | undefined, tree: LogRun[], field = 'logOffset'): Offsets {
  if (raw === undefined || raw === '') return {};
  const root = tree[0];
  let offsets: unknown;
  if (/^\d{1,10}$/.test(raw)) offsets = { [root.id]: Number(raw) };
  else {
    try {
      offsets = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    } catch {
      throw badOffset('must be a line number or the nextOffset of an earlier response', field);
    }
  }
  if (!offsets || typeof offsets !== 'object' || Array.isArray(offsets)) throw badOffset('must be a line number or the nextOffset of an earlier response', field);
  const byId = new Map(tree.map((r) => [r.id, r]));
  for (const [id, seq] of Object.entries(offsets)) {
    const run = byId.get(id);
    if (!run) throw badOffset(`names execution ${id}, which is not part of this execution`, field);
    if (!Number.isSafeInteger(seq) || (seq as number) < 0) throw badOffset(`offset of ${id} must be a non-negative integer`, field);
    if ((seq as number) > run.logSeq) throw badOffset(`${seq} is beyond the end of the log of ${id} (${run.logSeq} lines)`, field);
  }
  return offsets as Offsets;
}

export function formatOffset(tree: LogRun[], offsets: Offsets): string {
  if (tree.length === 1) return String(offsets[tree[0].id] ?? 0);
  const nonZero = Object.fromEntries(Object.entries(offsets).filter(([, v]) => v > 0));
  return Buffer.from(JSON.stringify(nonZero)).toString('base64url');
}

interface Row { run_id: string; seq: number; at: Date; level: LogLevel; source: string; log_group: string; message: string }

/** Up to `limit` lines after its offset for each run, in seq order per run. */
async function linesAfter(orm: MikroORM, tree: LogRun[], offsets: Offsets, limit: number): Promise<Row[]> {
  const rows = await orm.em.fork().getConnection().execute<(Omit<Row, 'at'> & { at: string | Date })[]>(
    `select l.run_id, l.seq, l.at, l.level, l.source, l.log_group, l.message
     from (values ${tree.map(() => '(?::uuid, ?::int)').join(', ')}) as o(run_id, after_seq)
     cross join lateral (select * from log_lines x where x.run_id = o.run_id and x.seq > o.after_seq order by x.seq limit ?) l`,
    [...tree.flatMap((r) => [r.id, offsets[r.id] ?? 0]), limit]);
  return rows.map((r) => ({ ...r, at: new Date(r.at) }));
}

/**
 * Merges per-run lists by time (ties: tree order) taking at most `limit`. Each run keeps a
 * prefix of its own lines, so its new offset never skips one, even if clocks of replicas
 * disagree and times are not monotonic within a run.
 */
function mergeByTime(tree: LogRun[], rows: Row[], limit: number): Row[] {
  const queues = tree.map((r) => rows.filter((l) => l.run_id === r.id));
  const out: Row[] = [];
  while (out.length < limit) {
    let best = -1;
    for (let i = 0; i < queues.length; i++) {
      if (queues[i].length && (best < 0 || queues[i][0].at.getTime() < queues[best][0].at.getTime())) best = i;
    }
    if (best < 0) break;
    out.push(queues[best].shift()!);
  }
  return out;
}

/** A page of a run tree's log, with (when asked for) the offset token after each of its lines: a live stream's event ids. */
export interface TreePage extends StreamPage {
  offsets: string[];
  /** The runs of the tree (the root first) when the page was read. */
  runs: string[];
}

const streamLine = (l: Row, byId: Map<string, LogRun>): StreamLine => ({
  seq: l.seq, timestamp: l.at.toISOString(), level: l.level, source: l.source, group: l.log_group, message: l.message,
  executionId: l.run_id, taskType: byId.get(l.run_id)!.taskType,
});

/** The next page of a run tree's log after `rawOffset` (see parseOffset); `offsetEach`: with each line's own offset. */
export async function readLogTreePage(orm: MikroORM, rootId: string, rawOffset: string | undefined, opts: { limit?: number; offsetEach?: boolean } = {}): Promise<TreePage> {
  const limit = opts.limit ?? STREAM_LIMIT;
  // The tree is read before the lines: if every run was terminal then, the lines up to its
  // logSeq are all there is.
  const tree = await loadLogTree(orm, rootId);
  if (!tree.length) throw new Error(`run ${rootId} vanished`);
  const offsets = { ...parseOffset(rawOffset, tree) };
  const rows = await linesAfter(orm, tree, offsets, limit + 1);
  const taken = mergeByTime(tree, rows, limit);
  const after: string[] = [];
  for (const l of taken) {
    offsets[l.run_id] = l.seq;
    if (opts.offsetEach) after.push(formatOffset(tree, offsets));
  }
  const byId = new Map(tree.map((r) => [r.id, r]));
  const hasMore = taken.length < rows.length;
  const caughtUp = tree.every((r) => (offsets[r.id] ?? 0) >= r.logSeq);
  return {
    status: tree[0].status,
    lines: taken.map((l) => streamLine(l, byId)),
    offsets: after,
    runs: tree.map((r) => r.id),
    nextOffset: formatOffset(tree, offsets),
    hasMore,
    finished: allTerminal(tree) && !hasMore && caughtUp,
  };
}

/** The next page of a run tree's log after `rawOffset` (see parseOffset). */
export async function readLogStream(orm: MikroORM, rootId: string, rawOffset: string | undefined, opts: { limit?: number } = {}): Promise<StreamPage> {
  const { offsets: _, runs: __, ...page } = await readLogTreePage(orm, rootId, rawOffset, opts);
  return page;
}

/** Checks an offset of a run tree's log before a stream starts from it (a 422 naming `field` if it is not one). */
export async function checkLogOffset(orm: MikroORM, rootId: string, raw: string, field: string): Promise<void> {
  parseOffset(raw, await loadLogTree(orm, rootId), field);
}

/**
 * The last `limit` lines of a run tree by time (what a page shows before it follows the rest), and
 * the offset that follows them. `cut`: older lines were left out.
 */
export async function readLogTail(orm: MikroORM, rootId: string, limit: number): Promise<{ lines: StreamLine[]; offset: string; cut: boolean }> {
  const tree = await loadLogTree(orm, rootId);
  if (!tree.length) throw new Error(`run ${rootId} vanished`);
  const rows = await orm.em.fork().getConnection().execute<(Omit<Row, 'at'> & { at: string | Date })[]>(
    `select l.run_id, l.seq, l.at, l.level, l.source, l.log_group, l.message
     from (values ${tree.map(() => '(?::uuid, ?::int)').join(', ')}) as o(run_id, upto)
     cross join lateral (select * from log_lines x where x.run_id = o.run_id and x.seq <= o.upto order by x.seq desc limit ?) l`,
    [...tree.flatMap((r) => [r.id, r.logSeq]), limit]);
  const all = mergeByTime(tree, rows.map((r) => ({ ...r, at: new Date(r.at) })).sort((a, b) => a.seq - b.seq), rows.length);
  const shown = all.slice(-limit);
  // Every line up to each run's logSeq is shown or older than those shown.
  const offsets: Offsets = Object.fromEntries(tree.map((r) => [r.id, r.logSeq]));
  const byId = new Map(tree.map((r) => [r.id, r]));
  const cut = tree.reduce((n, r) => n + r.logSeq, 0) > shown.length;
  return { lines: shown.map((l) => streamLine(l, byId)), offset: formatOffset(tree, offsets), cut };
}
