import { ConsoleClient, consoleServer, textOf } from '../support/console.js';
import { eventually, startRun, waitForRun } from '../support/server.js';

// The console's run page over plain HTTP against a real server: what it shows, who sees it, the
// controls through the core, and its event stream.
const fx = consoleServer();

const restRun = async (id: string) => (await fx.server.call('GET', `/v1/workflow-runs/${id}`)).body;
/** A run page once a step stands at `status` (read from the page itself: its row carries the status). */
const pageWhen = (c: ConsoleClient, id: string, ref: string, status: string) =>
  eventually(async () => {
    const r = await c.page(`/console/runs/${id}`);
    return r.html.includes(`data-step="${ref}" data-status="${status}"`) ? r : undefined;
  }, 20_000, `step ${ref} ${status}`);
/** The `<li>` of the timeline with these data attributes. */
const timelineItems = (html: string) => [...html.matchAll(/<li class="tl tl-[a-z_]+" data-kind="([a-z_]+)" data-door="([^"]+)">([\s\S]*?)<\/li>/g)]
  .map((m) => ({ kind: m[1], door: m[2], text: textOf(m[3]) }));

interface SseEvent { event: string; id?: string; data: any }

/** Reads a console event stream until `enough` says so (then hangs up) or the server closes it. */
async function readEvents(c: ConsoleClient, path: string, lastEventId: string | undefined, enough: (events: SseEvent[]) => boolean): Promise<{ events: SseEvent[]; closedByServer: boolean; status: number }> {
  const abort = new AbortController();
  const res = await fetch(fx.server.url + path, {
    signal: abort.signal,
    headers: { cookie: `fg_session=${c.cookie('fg_session')}`, accept: 'text/event-stream', ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}) },
  });
  const events: SseEvent[] = [];
  if (res.status !== 200) return { events, closedByServer: true, status: res.status };
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let closedByServer = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        closedByServer = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const e: Partial<SseEvent> & { lines: string[] } = { lines: [] };
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) e.event = line.slice(7);
          else if (line.startsWith('id: ')) e.id = line.slice(4);
          else if (line.startsWith('data: ')) e.lines.push(line.slice(6));
        }
        if (e.event) events.push({ event: e.event, id: e.id, data: JSON.parse(e.lines.join('\n')) });
      }
      if (enough(events)) break;
    }
  } finally {
    abort.abort();
  }
  return { events, closedByServer, status: res.status };
}

describe('what the page shows', () => {
  test('header, step rows, graph nodes, and a timeline with a refused attempt from two doors and the decision', async () => {
    const id = await startRun(fx.server, 'gated-log');
    await waitForRun(fx.server, id, ['Suspended']);
    const owner = await fx.signedIn(fx.people.owner);
    const approvalId = /href="\/console\/approvals\/([0-9a-f-]{36})"/.exec((await owner.page(`/console/runs/${id}`)).html)![1];

    // dev@acme.io is a member, not an owner: refused over REST, and again in the console.
    const refused = await fx.server.call('POST', `/sfp/api/flows/approvals/${id}/approve`, { approver: 'Dev', approverEmail: 'dev@acme.io' }, fx.people.dev);
    expect(refused.status).toBe(403);
    const dev = await fx.signedIn(fx.people.dev);
    await dev.page(`/console/approvals/${approvalId}`);
    expect((await dev.post(`/console/approvals/${approvalId}/decision`, { verdict: 'approve' })).status).toBe(403);
    const approved = await fx.server.call('POST', `/api/v1/approvals/${approvalId}/approve`, { comment: 'ship it' }, fx.people.owner);
    expect(approved.status).toBe(200);
    await waitForRun(fx.server, id, ['Completed']);

    const { status, html } = await owner.page(`/console/runs/${id}`);
    expect(status).toBe(200);
    const text = textOf(html);
    expect(text).toContain('Run of gated-log');
    expect(text).toMatch(/Flow type gated-log Status completed Project acme\/app Requested by \S+ Started from rest/);
    expect(html).toMatch(/<dt>Finished<\/dt><dd data-run-finished="true"><time datetime="/);
    // Step table rows and graph nodes, status as text.
    for (const ref of ['approve', 'say']) {
      expect(html).toContain(`<tr id="step-${ref}" data-step="${ref}" data-status="completed" class="reached">`);
      expect(html).toMatch(new RegExp(`<a href="#step-${ref}" class="node status-completed reached"[^>]*><title>${ref} \\(\\w+\\): completed</title>`));
    }
    expect(html).toMatch(/<svg class="step-graph"[^>]*role="group"[^>]*aria-label="Step graph of run/);
    expect(html).not.toMatch(/\sstyle=/);

    const items = timelineItems(html);
    const restRefusal = items.find((i) => i.kind === 'refused' && i.door === 'rest');
    expect(restRefusal?.text).toContain('dev@acme.io');
    expect(restRefusal?.text).toContain(`Refused because: ${refused.body.message}`);
    // The credential each came with, as the door knew it.
    expect(restRefusal?.text).toContain('as Token "dev"');
    expect(items.find((i) => i.kind === 'refused' && i.door === 'web')?.text).toMatch(/dev@acme\.io was refused approving .*as Token "dev", in the console.*Refused because: /);
    const decision = items.find((i) => i.kind === 'approved');
    expect(decision).toMatchObject({ door: 'rest' });
    expect(decision?.text).toMatch(/owner@acme\.io .*approved — the request is approved .*as Token "owner".*Reason: ship it/);
    // Oldest first: asked, the two refusals, then the decision.
    expect(items.map((i) => i.kind)).toEqual(['requested', 'refused', 'refused', 'approved']);
    // The log, and its download.
    expect(text).toContain('approved by owner@acme.io');
    const download = await owner.get(`/console/runs/${id}/logs.txt`);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(download.html).toMatch(/^\S+ INFO \[engine\/run\] Run of gated-log started by /);
    expect(download.html).toContain('approved by owner@acme.io');
  });

  test('a fan-out of fifty is one counted node; each step keeps its row', async () => {
    const id = await startRun(fx.server, 'fan-out-50');
    await waitForRun(fx.server, id, ['Completed']);
    const { html } = await (await fx.signedIn(fx.people.owner)).page(`/console/runs/${id}`);
    expect(html).toContain('>50 × log</text>');
    expect(html).toContain('>50 completed</text>');
    expect((html.match(/<a href="#step-/g) ?? []).length).toBe(3);
    for (const ref of ['start', 'b1', 'b50', 'join']) expect(html).toContain(`<tr id="step-${ref}"`);
  });

  test('a run of a project the viewer may not see is a 404, like an unknown id', async () => {
    const other = await startRun(fx.server, 'ten-steps', { repositoryIdentifier: 'acme/other' });
    const dev = await fx.signedIn(fx.people.devApp);
    const hidden = await dev.get(`/console/runs/${other}`);
    expect(hidden.status).toBe(404);
    expect(textOf(hidden.html)).toContain(`Run ${other} not found`);
    expect((await dev.get('/console/runs/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await dev.get(`/console/runs/${other}/events`)).status).toBe(404);
    expect((await dev.get(`/console/runs/${other}/logs.txt`)).status).toBe(404);
    // Its owner sees it.
    expect((await (await fx.signedIn(fx.people.owner)).get(`/console/runs/${other}`)).status).toBe(200);
  });
});

describe('run control', () => {
  test('a viewer sees no controls; an owner does', async () => {
    const id = await startRun(fx.server, 'waiter');
    const owner = await fx.signedIn(fx.people.owner);
    const ownerPage = await pageWhen(owner, id, 'wait', 'waiting');
    expect(ownerPage.html).toContain(`action="/console/runs/${id}/pause"`);
    expect(ownerPage.html).toContain(`href="/console/runs/${id}/cancel"`);
    expect(ownerPage.html).toContain(`href="/console/runs/${id}/steps/wait/skip"`);

    const viewer = await fx.signedIn(fx.people.viewer);
    const { status, html } = await viewer.page(`/console/runs/${id}`);
    expect(status).toBe(200);
    expect(html).not.toContain('/pause"');
    expect(html).not.toContain('/cancel"');
    expect(html).not.toContain('/skip"');
    expect(html).not.toContain('/force-complete"');
    expect(textOf(html)).toContain('you may look, not control runs');
    await fx.server.call('POST', `/v1/workflow-runs/${id}/pause`);
    expect((await viewer.post(`/console/runs/${id}/resume`, {})).status).toBe(403);
    expect((await restRun(id)).status).toBe('paused');
    await fx.server.call('DELETE', `/v1/workflow-runs/${id}`);
  });

  test('a post without the CSRF token is refused and changes nothing', async () => {
    const id = await startRun(fx.server, 'waiter');
    const owner = await fx.signedIn(fx.people.owner);
    await pageWhen(owner, id, 'wait', 'waiting');
    const r = await owner.post(`/console/runs/${id}/pause`, { _csrf: '' });
    expect(r.status).toBe(403);
    expect(textOf(r.html)).toContain('no valid CSRF token');
    expect((await restRun(id)).status).toBe('running');
    await fx.server.call('DELETE', `/v1/workflow-runs/${id}`);
  });

  test('pause, resume, cancel (confirmed) and retry change the run, as the REST API reads it', async () => {
    const id = await startRun(fx.server, 'waiter');
    const owner = await fx.signedIn(fx.people.owner);
    await pageWhen(owner, id, 'wait', 'waiting');

    const paused = await owner.post(`/console/runs/${id}/pause`, {});
    expect(paused.status).toBe(303);
    expect(paused.headers.get('location')).toBe(`/console/runs/${id}`);
    expect((await restRun(id)).status).toBe('paused');
    const pausedPage = await owner.page(`/console/runs/${id}`);
    expect(pausedPage.html).toContain(`action="/console/runs/${id}/resume"`);
    expect(pausedPage.html).not.toContain(`action="/console/runs/${id}/pause"`);

    expect((await owner.post(`/console/runs/${id}/resume`, {})).status).toBe(303);
    expect((await restRun(id)).status).toBe('running');
    // Refused by the core (the button was not offered): its words and status, on the run page.
    const again = await owner.post(`/console/runs/${id}/resume`, {});
    expect(again.status).toBe(400);
    expect(textOf(again.html)).toMatch(/only a paused run can be resumed/);
    expect(again.html).toContain('<h1>Run of waiter</h1>');

    const confirm = await owner.page(`/console/runs/${id}/cancel`);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toMatch(new RegExp(`<form method="post" action="/console/runs/${id}/cancel"`));
    expect((await restRun(id)).status).toBe('running');
    const cancelled = await owner.post(`/console/runs/${id}/cancel`, {});
    expect(cancelled.status).toBe(303);
    expect((await restRun(id)).status).toBe('canceled');

    const ended = await owner.page(`/console/runs/${id}`);
    expect(ended.html).not.toContain(`href="/console/runs/${id}/cancel"`);
    expect(ended.html).toContain(`action="/console/runs/${id}/retry"`);
    const retried = await owner.post(`/console/runs/${id}/retry`, {});
    expect(retried.status).toBe(303);
    const newId = /^\/console\/runs\/([0-9a-f-]{36})$/.exec(retried.headers.get('location') ?? '')![1];
    expect(newId).not.toBe(id);
    expect(await restRun(newId)).toMatchObject({ retry_of_run_id: id });
    await fx.server.call('DELETE', `/v1/workflow-runs/${newId}`);
  });

  test('force-complete of a waiting step goes through its confirmation and hands its output on', async () => {
    const id = await startRun(fx.server, 'waiter');
    const owner = await fx.signedIn(fx.people.owner);
    const before = await pageWhen(owner, id, 'wait', 'waiting');
    expect(before.html).toContain(`href="/console/runs/${id}/steps/wait/force-complete"`);
    const confirm = await owner.page(`/console/runs/${id}/steps/wait/force-complete`);
    expect(confirm.html).toContain('<label for="result">');
    const bad = await owner.post(`/console/runs/${id}/steps/wait/force-complete`, { result: '{not json' });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(textOf(bad.html)).toContain('not valid JSON');
    const done = await owner.post(`/console/runs/${id}/steps/wait/force-complete`, { result: '{"value": "forced"}' });
    expect(done.status).toBe(303);
    await waitForRun(fx.server, id, ['Completed']);
    const after = await owner.page(`/console/runs/${id}`);
    expect(after.html).toContain('data-step="wait" data-status="completed"');
    expect(textOf(after.html)).toContain('got forced');
  });
});

describe('the event stream', () => {
  test('sends a snapshot, log lines with their seq as id, resumes from Last-Event-ID without gaps or repeats, and ends with the run', async () => {
    const id = await startRun(fx.server, 'waiter');
    const owner = await fx.signedIn(fx.people.owner);
    await pageWhen(owner, id, 'wait', 'waiting');

    const first = await readEvents(owner, `/console/runs/${id}/events`, undefined, (es) => es.some((e) => e.event === 'snapshot'));
    const snapshot = first.events.find((e) => e.event === 'snapshot')!;
    expect(snapshot.data.status).not.toBe('completed');
    expect(snapshot.data.steps).toEqual(expect.arrayContaining([expect.objectContaining({ ref: 'wait', status: 'waiting' })]));
    const seen: number[] = snapshot.data.lines.map((l: { seq: number }) => l.seq);
    expect(seen[0]).toBe(1);
    expect(snapshot.id).toBe(String(seen.at(-1)));

    // Lines written while nobody listens arrive on the resumed stream.
    await fx.server.call('POST', `/v1/workflow-runs/${id}/pause`);
    await fx.server.call('POST', `/v1/workflow-runs/${id}/resume`);
    expect((await fx.server.call('POST', `/api/v1/runs/${id}/events`, { event: 'go', payload: { value: 'green' } })).status).toBe(202);

    const second = await readEvents(owner, `/console/runs/${id}/events`, snapshot.id, () => false);
    expect(second.closedByServer).toBe(true);
    const resumed = second.events.find((e) => e.event === 'snapshot')!;
    const logs = second.events.filter((e) => e.event === 'log');
    for (const e of logs) expect(e.id).toBe(String(e.data.seq));
    const more: number[] = [...resumed.data.lines, ...logs.map((e) => e.data)].map((l: { seq: number }) => l.seq);
    expect(more[0]).toBe(seen.at(-1)! + 1);
    const all = [...seen, ...more];
    expect(all).toEqual(all.map((_, i) => i + 1));
    const messages = [...resumed.data.lines, ...logs.map((e) => e.data)].map((l: { message: string }) => l.message);
    expect(messages).toEqual(expect.arrayContaining([expect.stringMatching(/^Run paused by /), 'got green']));
    const end = second.events.at(-1)!;
    expect(end).toMatchObject({ event: 'end', data: { status: 'completed', offset: String(all.at(-1)) }, id: String(all.at(-1)) });
    const doneStep = [...resumed.data.steps, ...second.events.filter((e) => e.event === 'step').map((e) => e.data)].filter((s: { ref: string }) => s.ref === 'done').at(-1);
    expect(doneStep).toMatchObject({ status: 'completed' });

    // An ended run: the snapshot, nothing it has seen again, and the end.
    const late = await readEvents(owner, `/console/runs/${id}/events`, end.id, () => false);
    expect(late.events.map((e) => e.event)).toEqual(['snapshot', 'end']);
    expect(late.events[0].data.lines).toEqual([]);
  });

  test('a run with child runs: its page and stream carry the children\'s lines by time, each naming its run; a reconnect resumes every run where it was', async () => {
    const id = await startRun(fx.server, 'chatty-orchestrator');
    const owner = await fx.signedIn(fx.people.owner);
    // Until the children have written something, at least: then the first snapshot has lines of several runs.
    await eventually(async () => ((await fx.server.call('GET', `/sfp/api/flows/${id}/logs/stream`)).body?.lines?.some((l: any) => /line 1$/.test(l.message)) ? true : undefined), 20_000, 'a child line');
    const first = await readEvents(owner, `/console/runs/${id}/events`, undefined, (es) => es.some((e) => e.event === 'snapshot'));
    const snapshot = first.events.find((e) => e.event === 'snapshot')!;
    const runsIn = (lines: { run: string }[]) => new Set(lines.map((l) => l.run));
    expect(runsIn(snapshot.data.lines).size).toBeGreaterThan(1);
    expect(snapshot.data.lines[0]).toMatchObject({ run: id, taskType: 'chatty-orchestrator' });
    // Two runs, so the offset names each: not a plain line number.
    expect(snapshot.id).not.toMatch(/^\d+$/);

    const second = await readEvents(owner, `/console/runs/${id}/events`, snapshot.id, () => false);
    expect(second.closedByServer).toBe(true);
    const later = [...second.events.find((e) => e.event === 'snapshot')!.data.lines, ...second.events.filter((e) => e.event === 'log').map((e) => e.data)];
    const all = [...snapshot.data.lines, ...later];
    // Every line of every run exactly once, each run's in order.
    const tree = (await fx.server.call('GET', `/sfp/api/flows/${id}/logs/stream`)).body.lines.map((l: any) => `${l.executionId}:${l.seq}`);
    expect(all.map((l: any) => `${l.run}:${l.seq}`).sort()).toEqual([...tree].sort());
    for (const run of runsIn(all)) {
      const seqs = all.filter((l: any) => l.run === run).map((l: any) => l.seq);
      expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1));
    }
    expect(all.filter((l: any) => l.taskType === 'chatty').map((l: any) => l.message)).toEqual(expect.arrayContaining(['left line 6', 'right line 6']));
    expect(all.at(-1)).toMatchObject({ run: id, message: expect.stringMatching(/^Run completed/) });
    expect(second.events.at(-1)).toMatchObject({ event: 'end', data: { status: 'completed' } });

    // The finished page shows them too, each child's line linked to its run; so does the download.
    const page = await owner.page(`/console/runs/${id}`);
    const child = all.find((l: any) => l.run !== id)!;
    expect(page.html).toContain(`<a class="log-run" href="/console/runs/${child.run}">chatty</a>`);
    expect(textOf(page.html)).toContain('right line 6');
    const text = (await owner.get(`/console/runs/${id}/logs.txt`)).html;
    expect(text).toContain(`(chatty run ${child.run}) `);
    expect(text.trim().split('\n')).toHaveLength(all.length);

    // An offset that is not one of this run's: refused before any stream starts, naming where it came from.
    const bad = await owner.get(`/console/runs/${id}/events`, { 'last-event-id': Buffer.from(JSON.stringify({ [fx.people.owner]: 1 })).toString('base64url') });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('Last-Event-ID');
  });
});
