import yauzl from 'yauzl';
import { formatLogLine, safeSegment } from '../../src/core/logs/log-format.js';
import { readLogStream } from '../../src/core/logs/log-stream.js';
import type { Run } from '../../src/db/entities/run.js';
import { ADMIN_TOKEN, createProject, createToken, startTestServer, type TestServer, eventually } from '../support/server.js';

let server: TestServer;
const FLOWS = '/sfp/api/flows';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  server = await startTestServer();
  await createProject(server, 'acme/app');
  await createProject(server, 'acme/other');
});
afterAll(async () => {
  await server?.stop();
});

const start = async (id: string, params: Record<string, unknown> = {}) => {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id, repositoryIdentifier: 'acme/app', ...params } });
  expect(r.status).toBe(201);
  return r.body.id as string;
};

/** Inserts a run directly (cicd runs cannot be started through this API; seeded logs need no engine). */
async function seedRun(overrides: Partial<Run>): Promise<Run> {
  const run = await server.services.runs.prepare({ payload: { id: 'chatty' }, repositoryIdentifier: 'acme/app', triggeredBy: 'seed' });
  Object.assign(run, { status: 'completed', startedAt: new Date(Date.now() - 120_000), finishedAt: new Date(Date.now() - 60_000) }, overrides);
  await server.services.store.insert(run);
  return run;
}

const streamUrl = (id: string, offset?: string) => `${FLOWS}/${id}/logs/stream${offset === undefined ? '' : `?logOffset=${encodeURIComponent(offset)}`}`;

/** Polls the stream like a client until `finished`, returning every page. */
async function follow(id: string, everyMs = 150) {
  const pages: any[] = [];
  let offset: string | undefined;
  const until = Date.now() + 40_000;
  for (;;) {
    const r = await server.call('GET', streamUrl(id, offset));
    expect(r.status).toBe(200);
    pages.push(r.body);
    if (r.body.finished) return pages;
    if (Date.now() > until) throw new Error(`stream of ${id} not finished; last page ${JSON.stringify(r.body)}`);
    offset = r.body.nextOffset;
    if (!r.body.hasMore) await sleep(everyMs);
  }
}

const key = (l: any) => `${l.seq} ${l.message}`;

describe('GET /{id}/logs/stream', () => {
  test('a poller on a live run sees every line once, in order; finished only at the end', async () => {
    const id = await start('chatty', { name: 'solo' });
    const pages = await follow(id);
    const lines = pages.flatMap((p) => p.lines);
    const all = await server.call('GET', `${FLOWS}/${id}/logs`);
    expect(lines.map(key)).toEqual(all.body.logs.map(key));
    expect(lines.map((l: any) => l.seq)).toEqual(lines.map((_: any, i: number) => i + 1));
    expect(lines.filter((l: any) => /^solo line \d$/.test(l.message)).map((l: any) => l.message)).toEqual([1, 2, 3, 4, 5, 6].map((n) => `solo line ${n}`));
    expect(lines.at(-1).message).toBe('Run completed');
    expect(lines.every((l: any) => l.executionId === id && l.taskType === 'chatty')).toBe(true);
    // Streamed while live: lines came over several pages, some of them while the run was still under way
    // (running, or waiting between its sleeps: a run starts at once and parks at each sleep).
    expect(pages.filter((p) => p.lines.length).length).toBeGreaterThan(2);
    expect(pages.some((p) => ['Running', 'Waiting'].includes(p.status) && p.lines.length)).toBe(true);
    expect(pages.slice(0, -1).every((p) => !p.finished)).toBe(true);
    expect(pages.at(-1)).toMatchObject({ id, status: 'Completed', finished: true, hasMore: false, nextOffset: String(lines.length) });
    // After the end: nothing more, still finished.
    expect((await server.call('GET', streamUrl(id, String(lines.length)))).body).toMatchObject({ lines: [], finished: true });
  });

  test('an orchestrator streams its children lines, labelled by child, with an opaque offset', async () => {
    const id = await start('chatty-orchestrator');
    const pages = await follow(id);
    const lines = pages.flatMap((p) => p.lines);
    const all = (await server.call('GET', `${FLOWS}/${id}/logs`)).body;
    expect(all.children).toHaveLength(2);
    const of = (execId: string) => lines.filter((l: any) => l.executionId === execId);
    expect(of(id).map(key)).toEqual(all.logs.map(key));
    expect(of(id).every((l: any) => l.taskType === 'chatty-orchestrator')).toBe(true);
    for (const child of all.children) {
      expect(of(child.id).map(key)).toEqual(child.logs.map(key));
      expect(of(child.id).every((l: any) => l.taskType === 'chatty')).toBe(true);
    }
    expect(lines).toHaveLength(all.logs.length + all.children[0].logs.length + all.children[1].logs.length);
    expect(lines.map((l: any) => l.message)).toEqual(expect.arrayContaining(['left line 6', 'right line 6', 'children done']));
    // While its children run the orchestrator is Running (or, parked on Engine v2, Waiting).
    expect(pages.some((p) => ['Running', 'Waiting'].includes(p.status) && p.lines.some((l: any) => l.executionId !== id))).toBe(true);
    const last = pages.at(-1);
    expect(last).toMatchObject({ status: 'Completed', finished: true });
    expect(last.nextOffset).not.toMatch(/^\d+$/);
    expect(JSON.parse(Buffer.from(last.nextOffset, 'base64url').toString())).toEqual({
      [id]: all.logs.length, [all.children[0].id]: all.children[0].logs.length, [all.children[1].id]: all.children[1].logs.length,
    });

    // The same tree read in small pages reassembles to the same lines; a full page says hasMore.
    let offset: string | undefined;
    const small: any[] = [];
    for (let i = 0; i < 100; i++) {
      const page = await readLogStream(server.services.orm, id, offset, { limit: 7 });
      expect(page.lines.length).toBeLessThanOrEqual(7);
      expect(page.finished).toBe(!page.hasMore);
      small.push(...page.lines);
      offset = page.nextOffset;
      if (page.finished) break;
    }
    expect(small.map((l) => `${l.executionId} ${key(l)}`).sort()).toEqual(lines.map((l: any) => `${l.executionId} ${key(l)}`).sort());
  });

  test('the cap: 1000 lines per response, hasMore until the last page', async () => {
    const run = await seedRun({});
    await server.services.logs.append(run.id, Array.from({ length: 2500 }, (_, i) => ({ level: 'info' as const, source: 'engine', group: 'run', message: `line ${i + 1}` })));
    const pages = [];
    let offset: string | undefined;
    do {
      const r = await server.call('GET', streamUrl(run.id, offset));
      pages.push(r.body);
      offset = r.body.nextOffset;
    } while (!pages.at(-1).finished && pages.length < 5);
    expect(pages.map((p) => [p.lines.length, p.hasMore, p.finished, p.nextOffset])).toEqual([
      [1000, true, false, '1000'], [1000, true, false, '2000'], [500, false, true, '2500'],
    ]);
    expect(pages.flatMap((p) => p.lines).map((l: any) => l.message)).toEqual(Array.from({ length: 2500 }, (_, i) => `line ${i + 1}`));
  });

  test('a run\'s closing line is written with its end: the read that sees it ended has the line', async () => {
    const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'waiter', repositoryIdentifier: 'acme/app' } });
    await eventually(async () => ((await server.call('GET', `${FLOWS}/${r.body.id}`)).body.status === 'Waiting' ? true : undefined));
    await server.call('POST', `${FLOWS}/${r.body.id}/cancel`);
    const page = await readLogStream(server.services.orm, r.body.id, undefined);
    expect(page.finished).toBe(true);
    expect(page.lines.at(-1)!.message).toBe('Run cancelled by token:admin');
    expect(page.lines[0].message).toMatch(/^Run of waiter started by/);
  });

  test('bad logOffset is a 400 naming logOffset', async () => {
    const run = await seedRun({});
    await server.services.logs.append(run.id, [{ level: 'info', source: 'engine', group: 'run', message: 'one' }]);
    const other = await seedRun({});
    const token = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    for (const bad of ['abc!', '-1', '2', '1.5', token([1]), token({ [run.id]: -1 }), token({ [run.id]: 'x' }), token({ [other.id]: 0 })]) {
      const r = await server.call('GET', streamUrl(run.id, bad));
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(r.body.message[0]).toMatch(/^logOffset: /);
    }
    expect((await server.call('GET', streamUrl(run.id, token({ [run.id]: 1 })))).body).toMatchObject({ lines: [], finished: true, nextOffset: '1' });
    expect((await server.call('GET', streamUrl(run.id, ''))).body.lines).toHaveLength(1);
  });

  test('400 for cicd runs, 404 unknown, 401 without a token, 403 for another project', async () => {
    const cicd = await seedRun({ executionMode: 'cicd' });
    const flow = await seedRun({});
    const scoped = await createToken(server, { name: 'other-only', role: 'member', projects: ['acme/other'] });
    for (const suffix of ['logs/stream', 'logs/download']) {
      const refused = await server.call('GET', `${FLOWS}/${cicd.id}/${suffix}`);
      expect(refused).toMatchObject({ status: 400, body: { statusCode: 400, message: 'Logs only available for flow executions', error: 'Bad Request' } });
      expect(await server.call('GET', `${FLOWS}/01a20000-0000-7000-8000-000000000000/${suffix}`)).toMatchObject({ status: 404, body: { statusCode: 404, error: 'Not Found' } });
      expect((await server.call('GET', `${FLOWS}/${flow.id}/${suffix}`, undefined, null)).body).toEqual({ statusCode: 401, message: 'Missing bearer token', error: 'Unauthorized' });
      const forbidden = await server.call('GET', `${FLOWS}/${flow.id}/${suffix}`, undefined, scoped);
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.message).toMatch(/acme\/app/);
    }
  });
});

/** Every entry of a ZIP, name → content. */
async function unzip(buffer: Buffer): Promise<Map<string, string>> {
  const zip = await yauzl.fromBufferPromise(buffer, { lazyEntries: true });
  const out = new Map<string, string>();
  for (;;) {
    const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
      const done = (value?: yauzl.Entry, err?: Error) => {
        zip.off('entry', onEntry).off('end', onEnd).off('error', onError);
        if (err) reject(err); else resolve(value);
      };
      const onEntry = (e: yauzl.Entry) => done(e);
      const onEnd = () => done();
      const onError = (err: Error) => done(undefined, err);
      zip.on('entry', onEntry).on('end', onEnd).on('error', onError);
      zip.readEntry();
    });
    if (!entry) return out;
    const stream = await zip.openReadStreamPromise(entry);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    out.set(entry.fileName, Buffer.concat(chunks).toString('utf8'));
  }
}

const download = (id: string) => fetch(`${server.url}${FLOWS}/${id}/logs/download`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
const text = (lines: any[]) => lines.map((l) => `${formatLogLine(l)}\n`).join('');
const groupFiles = (lines: any[], dir = '') => {
  const files = new Map<string, string>();
  for (const l of lines) {
    const name = `${dir}${safeSegment(l.source)}/${safeSegment(l.group)}.log`;
    files.set(name, (files.get(name) ?? '') + `${formatLogLine(l)}\n`);
  }
  return files;
};

describe('GET /{id}/logs/download', () => {
  test('an orchestrator: console.log, a file per source and group, a directory per child', async () => {
    const id = await start('chatty-orchestrator', { items: ['a', 'b'] });
    await follow(id, 300);
    const res = await download(id);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="flowgate-chatty-orchestrator-${id}-logs.zip"`);
    const entries = await unzip(Buffer.from(await res.arrayBuffer()));

    const all = (await server.call('GET', `${FLOWS}/${id}/logs`)).body;
    const expected = new Map([['console.log', text(all.logs)], ...groupFiles(all.logs)]);
    for (const child of all.children) {
      const dir = `chatty-${child.id}/`;
      expected.set(`${dir}console.log`, text(child.logs));
      for (const [name, content] of groupFiles(child.logs, dir)) expected.set(name, content);
    }
    expect([...entries.keys()].sort()).toEqual([...expected.keys()].sort());
    expect(entries.has('step-intro/log.log')).toBe(true);
    expect(entries.has(`chatty-${all.children[1].id}/step-say6/log.log`)).toBe(true);
    expect(entries.get('console.log')!.trimEnd().split('\n').map((l) => l.replace(/^\S+ \S+ \[[^\]]*\] /, ''))).toEqual(all.logs.map((l: any) => l.message));
    for (const [name, content] of expected) expect([name, entries.get(name)]).toEqual([name, content]);
  });

  test('a long log is paged into the archive, split by source and group', async () => {
    const run = await seedRun({});
    await server.services.logs.append(run.id, Array.from({ length: 2500 }, (_, i) => ({
      level: i % 3 ? 'info' as const : 'warn' as const, source: i % 2 ? 'step:grant' : 'engine', group: i % 2 ? 'http' : 'run', message: `line ${i + 1}`,
    })));
    const entries = await unzip(Buffer.from(await (await download(run.id)).arrayBuffer()));
    expect([...entries.keys()].sort()).toEqual(['console.log', 'engine/run.log', 'step-grant/http.log']);
    const consoleLines = entries.get('console.log')!.trimEnd().split('\n');
    expect(consoleLines).toHaveLength(2500);
    expect(consoleLines[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z WARN \[engine\/run\] line 1$/);
    expect(consoleLines[2499]).toMatch(/ WARN \[step:grant\/http\] line 2500$/);
    expect(entries.get('step-grant/http.log')!.trimEnd().split('\n').map((l) => l.split(' ').at(-1))).toEqual(Array.from({ length: 1250 }, (_, i) => String(2 * i + 2)));
  });
});
