import { Readable } from 'node:stream';
import type { MikroORM } from '@mikro-orm/postgresql';
import { ZipFile } from 'yazl';
import { formatLogLine, safeSegment } from './log-format.js';
import { loadLogTree, type LogRun } from './log-tree.js';

const PAGE = 1000;

interface Group { source: string; group: string }

/**
 * A ZIP of a run tree's logs, produced while it is sent: `console.log` and `<source>/<group>.log`
 * per run, children in `<taskType>-<id>/` below their parent. Each entry pages through the
 * database only when the archive reaches it, so memory stays flat however long the log.
 * Entries stop at each run's line count when the download began: every file shows one moment.
 */
export async function openLogArchive(orm: MikroORM, rootId: string, onError: (err: unknown) => void): Promise<{ fileName: string; stream: Readable }> {
  const tree = await loadLogTree(orm, rootId);
  const groups = await groupsOf(orm, tree);
  const zip = new ZipFile();
  const stream = zip.outputStream as Readable;
  // A failed page cannot become an error response any more (the headers are out): cut the
  // download, so the client sees a broken transfer rather than a complete-looking archive.
  // (yazl does not listen for errors of the streams it is given.)
  const fail = (err: unknown) => { onError(err); stream.destroy(err as Error); };
  zip.on('error', fail);
  const dirs = new Map<string | null, string>([[tree[0].id, '']]);
  for (const run of tree) {
    if (run !== tree[0]) dirs.set(run.id, `${dirs.get(run.parentRunId) ?? ''}${safeSegment(run.taskType)}-${run.id}/`);
    const dir = dirs.get(run.id)!;
    zip.addReadStreamLazy(`${dir}console.log`, (cb) => cb(null, lines(orm, run).on('error', fail)));
    const used = new Set<string>();
    for (const g of groups.filter((x) => x.runId === run.id)) {
      // Sanitising can make two names equal (`step:a`, `step-a`): keep both files.
      let name = `${safeSegment(g.source)}/${safeSegment(g.group)}`;
      for (let i = 2; used.has(name); i++) name = `${safeSegment(g.source)}/${safeSegment(g.group)}-${i}`;
      used.add(name);
      zip.addReadStreamLazy(`${dir}${name}.log`, (cb) => cb(null, lines(orm, run, g).on('error', fail)));
    }
  }
  zip.end();
  return { fileName: `flowgate-${safeSegment(tree[0].taskType)}-${tree[0].id}-logs.zip`, stream };
}

async function groupsOf(orm: MikroORM, tree: LogRun[]): Promise<(Group & { runId: string })[]> {
  const rows = await orm.em.fork().getConnection().execute<{ run_id: string; source: string; log_group: string }[]>(
    `select distinct l.run_id, l.source, l.log_group
     from (values ${tree.map(() => '(?::uuid, ?::int)').join(', ')}) as s(run_id, max_seq)
     join log_lines l on l.run_id = s.run_id and l.seq <= s.max_seq
     order by l.run_id, l.source, l.log_group`, tree.flatMap((r) => [r.id, r.logSeq]));
  return rows.map((r) => ({ runId: r.run_id, source: r.source, group: r.log_group }));
}

/** The run's formatted lines up to its snapshot, optionally of one source and group, a page at a time. */
function lines(orm: MikroORM, run: LogRun, only?: Group): Readable {
  async function* pages() {
    let after = 0;
    while (after < run.logSeq) {
      const rows = await orm.em.fork().getConnection().execute<{ seq: number; at: string | Date; level: string; source: string; log_group: string; message: string }[]>(
        `select seq, at, level, source, log_group, message from log_lines
         where run_id = ? and seq > ? and seq <= ? ${only ? 'and source = ? and log_group = ?' : ''}
         order by seq limit ?`, [run.id, after, run.logSeq, ...(only ? [only.source, only.group] : []), PAGE]);
      if (!rows.length) return;
      yield Buffer.from(rows.map((r) => `${formatLogLine({ ...r, timestamp: new Date(r.at).toISOString(), group: r.log_group })}\n`).join(''));
      after = rows.at(-1)!.seq;
    }
  }
  return Readable.from(pages(), { objectMode: false });
}
