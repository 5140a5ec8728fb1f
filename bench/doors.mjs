// The doors under load, on the real server process, against the fake Slack and GitHub of the
// end-to-end tests: Approve clicks on Slack approval requests, and `/flowgate run` comments
// delivered as GitHub webhooks.
import pg from 'pg';
import { loadFakes } from './fakes.mjs';

const SLACK_SECRET = 'bench-slack-signing-secret-0123';
const GITHUB_SECRET = 'bench-github-webhook-secret-0123';
const APP_ID = '4242';
const INSTALLATION = 77;
const CHANNEL = 'C0BENCH';
const DEV = 'U0BENCHDEV';
const OWNER = 'U0BENCHOWNER';
const SLACK_REPO = 'bench/chat';
const GITHUB_REPO = 'bench/gh';
const TERMINAL = ['completed', 'partial', 'failed', 'cancelled', 'timed_out'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN; };
const spread = (xs) => ({ p50: pct(xs, 50), p95: pct(xs, 95), p99: pct(xs, 99), n: xs.length });

async function until(check, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not reached within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

/** Starts the fakes (and a target for the `gated` flow's call); `env` turns both doors on against them. */
export async function startDoorFakes() {
  const f = await loadFakes();
  const key = f.appKey();
  const [slack, github, target] = await Promise.all([new f.FakeSlack().start(), new f.FakeGithub(APP_ID, key.publicKey).start(), new f.Recorder().start()]);
  slack.user(DEV, 'dev@bench.io', 'Dev Bench').user(OWNER, 'owner@bench.io', 'Olive Owner');
  github.installations.set(GITHUB_REPO, INSTALLATION);
  const env = {
    SLACK_BOT_TOKEN: 'xoxb-bench', SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_API_URL: slack.apiUrl,
    GITHUB_APP_ID: APP_ID, GITHUB_PRIVATE_KEY: key.privateKey, GITHUB_WEBHOOK_SECRET: GITHUB_SECRET, GITHUB_API_URL: github.url,
  };
  const stop = () => Promise.all([slack.stop(), github.stop(), target.stop()]);
  return { f, slack, github, target, env, stop };
}

/** The projects and the GitHub login the door benchmarks act in (admin headers of the server). */
export async function registerDoorProjects(url, headers) {
  const put = async (p, body) => {
    const r = await fetch(url + p, { method: 'PUT', headers, body: JSON.stringify(body) });
    if (r.status >= 300) throw new Error(`PUT ${p}: ${r.status} ${await r.text()}`);
  };
  const people = { owners: ['owner@bench.io'], members: ['dev@bench.io'] };
  await put(`/api/v1/projects/${SLACK_REPO}`, { provider: 'github', ...people, slackChannel: CHANNEL });
  await put(`/api/v1/projects/${GITHUB_REPO}`, { provider: 'github', ...people });
  await put('/api/v1/identities/dev@bench.io', { githubLogin: 'dev-gh' });
}

/**
 * The flow the clicks decide: `gated-log` (an approval, then a log line: the measure the Engine v2
 * issue names, as the REST approve measure), or with `BENCH_SLACK_FLOW=gated` an approval then an
 * HTTP call to the target (the measure of earlier releases).
 */
const SLACK_FLOW = process.env.BENCH_SLACK_FLOW ?? 'gated-log';
if (!['gated-log', 'gated'].includes(SLACK_FLOW)) throw new Error(`BENCH_SLACK_FLOW: expected gated-log or gated, got ${SLACK_FLOW}`);

/**
 * `runs` runs of SLACK_FLOW started with `/flowgate run` in a channel, each waiting at its approval
 * request in the run's thread; then an owner clicks Approve on each, `perS` clicks a second (as the
 * REST approve measure; `BENCH_APPROVALS_PER_S`, 50 by default; 0 = as fast as `concurrency`
 * allows) with at most `concurrency` in flight (a click is in flight until its run finished). From
 * each click: the HTTP answer, the approval decided (its row), the request's message updated
 * (chat.update at the fake) and the run finished (its row).
 */
export async function slackApprovals(server, d, { runs, concurrency = 20, perS = Number(process.env.BENCH_APPROVALS_PER_S ?? 50), cpu }) {
  const { f, slack } = d;
  const sender = new f.SlackSender(server.url, SLACK_SECRET);
  const approveButton = (body) => (body.blocks ?? []).find((b) => b.type === 'actions')?.elements.find((e) => e.action_id === 'flowgate_approve');
  const requests = () => slack.to('chat.postMessage', (b) => b.channel === CHANNEL && b.thread_ts && approveButton(b));

  const starts = Array.from({ length: runs }, () => (SLACK_FLOW === 'gated' ? `run gated target=${d.target.url}` : 'run gated-log'));
  await Promise.all(Array.from({ length: 10 }, async () => {
    while (starts.length) {
      const r = await sender.command(starts.shift(), { user: DEV, channel: CHANNEL });
      if (r.status !== 200) throw new Error(`/flowgate run answered ${r.status}: ${r.text}`);
    }
  }));
  const told = () => slack.to('chat.postEphemeral').map((c) => c.body.text).slice(0, 3).join(' | ');
  await until(() => requests().length >= runs, 300_000, `${runs} approval requests in Slack (private replies: ${told() || 'none'})`);
  const client = new pg.Client({ connectionString: server.dbUrl });
  await client.connect();
  try {
    // Posted is not yet recorded: the message's ts is stored once chat.postMessage answered.
    await until(async () => (await client.query(`select count(*)::int as n from approvals where repository_identifier = $1 and status = 'pending' and chat->'slack'->>'messageTs' is not null`, [SLACK_REPO])).rows[0].n >= runs,
      60_000, 'approval requests recorded as posted');

    const all = requests().map((c) => ({ id: approveButton(c.body).value, ts: c.response.ts, threadTs: c.body.thread_ts, blocks: c.body.blocks }));
    const byId = new Map(all.map((a) => [a.id, a]));
    const queue = [...all];
    const watching = new Set();
    let clicking = true;
    let broken;
    const cpuBefore = await cpu?.(client);
    const t0 = Date.now();
    let next = 0;
    const workers = Array.from({ length: concurrency }, async () => {
      while (queue.length) {
        const a = queue.shift();
        if (perS > 0) await sleep(Math.max(0, t0 + (next++ * 1000) / perS - Date.now()));
        a.sentAt = Date.now();
        const t = performance.now();
        const r = await sender.interaction(f.buttonClick({ actionId: 'flowgate_approve', value: a.id, user: OWNER, channel: CHANNEL, message: { ts: a.ts, thread_ts: a.threadTs, blocks: a.blocks } }));
        a.ack = performance.now() - t;
        if (r.status !== 200) { a.failed = `HTTP ${r.status}`; continue; }
        if (broken) break;
        await new Promise((resolve) => { a.resolve = resolve; watching.add(a); });
      }
    });
    // One poller for every click in flight, so that watching adds one query, not twenty. The times
    // are the rows' own (resolved_at, finished_at: same clock, same machine), as the REST measure's,
    // so the poller's interval and its query's latency are not counted.
    const poller = (async () => {
      while (clicking || watching.size) {
        if (watching.size) {
          const { rows } = await client.query(`select a.id, a.status, r.status as run, extract(epoch from a.resolved_at) * 1000 as decided_at, extract(epoch from r.finished_at) * 1000 as done_at
            from approvals a join runs r on r.id = a.run_id where a.id = any($1::uuid[])`, [[...watching].map((a) => a.id)]);
          const at = Date.now();
          for (const row of rows) {
            const a = byId.get(row.id);
            if (row.status !== 'pending') a.decidedAt ??= Number(row.decided_at ?? at);
            if (TERMINAL.includes(row.run)) { a.doneAt = Number(row.done_at ?? at); a.outcome = `${row.status}/${row.run}`; watching.delete(a); a.resolve(); }
          }
          for (const a of watching) if (at - a.sentAt > 60_000) { a.failed = 'no finished run within 60 s'; watching.delete(a); a.resolve(); }
        }
        await sleep(20);
      }
    })().catch((err) => {
      broken = err;
      for (const a of watching) a.resolve();
    });
    await Promise.all(workers);
    clicking = false;
    await poller;
    if (broken) throw broken;

    // Where the time goes, from the rows' own timestamps: received (the delivery recorded), decided
    // (the approval's row), the approval step done and the next step started (the executor).
    const { rows: marks } = await client.query(`select a.id, extract(epoch from d.received_at) * 1000 as received,
        extract(epoch from a.resolved_at) * 1000 as decided,
        (select extract(epoch from s.finished_at) * 1000 from step_runs s where s.run_id = a.run_id and s.step_ref = 'approve') as step_done,
        (select extract(epoch from min(s.started_at)) * 1000 from step_runs s where s.run_id = a.run_id and s.step_ref <> 'approve') as next_started
      from approvals a left join inbound_deliveries d on d.door = 'slack' and d.payload->>'approvalId' = a.id::text
      where a.id = any($1::uuid[])`, [all.map((a) => a.id)]);
    const sentAtOf = new Map(all.map((a) => [a.id, a.sentAt]));
    const stage = (f) => spread(marks.map(f).filter(Number.isFinite));
    const stages = {
      received: stage((m) => m.received - sentAtOf.get(m.id)),
      decided: stage((m) => m.decided - m.received),
      stepDone: stage((m) => m.step_done - m.decided),
      nextStarted: stage((m) => m.next_started - m.step_done),
    };
    const updateOf = (a) => slack.to('chat.update', (b) => b.ts === a.ts).find((c) => c.at >= a.sentAt);
    await until(() => all.every((a) => a.failed || updateOf(a)), 30_000, 'chat.update of every decided request').catch(() => undefined);
    // The clicks' whole cost, notices included: CPU from the first click until every message was updated.
    const cpuAfter = await cpu?.(client);
    const ok = all.filter((a) => !a.failed);
    return {
      flow: SLACK_FLOW,
      runs,
      perS,
      clickedPerS: runs / ((Math.max(...all.map((a) => a.sentAt)) - t0 + 1) / 1000),
      ack: spread(all.map((a) => a.ack)),
      decided: spread(ok.map((a) => a.decidedAt - a.sentAt)),
      updated: spread(ok.flatMap((a) => { const c = updateOf(a); return c ? [c.at - a.sentAt] : []; })),
      finished: spread(ok.map((a) => a.doneAt - a.sentAt)),
      notCompleted: all.filter((a) => a.failed || a.outcome !== 'approved/completed').length,
      notUpdated: ok.filter((a) => !updateOf(a)).length,
      stages,
      cpuMsPerClick: cpuBefore && cpuAfter ? Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, ((cpuAfter[k] - cpuBefore[k]) * 1000) / runs])) : null,
    };
  } finally {
    await client.end();
  }
}

/**
 * `clients` concurrent senders of signed `issue_comment` deliveries (`/flowgate run notifier`, a
 * member, each on an issue of its own) for `seconds`; then every acknowledged delivery must show
 * up as exactly one run of that issue, and those runs finish.
 */
export async function githubIntake(server, d, { seconds, clients = 32 }) {
  const { f } = d;
  const lat = [];
  const acked = [];
  let errors = 0;
  let issue = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (Date.now() < end) {
      const n = ++issue;
      const payload = f.commentPayload({ repo: GITHUB_REPO, issueNumber: n, login: 'dev-gh', association: 'MEMBER', installationId: INSTALLATION, body: '/flowgate run notifier text=bench' });
      const t = performance.now();
      const r = await f.deliver(server.url, GITHUB_SECRET, 'issue_comment', payload);
      lat.push(performance.now() - t);
      if (r.status === 202 && r.body?.accepted === 1) acked.push(n); else errors++;
    }
  }));

  const client = new pg.Client({ connectionString: server.dbUrl });
  await client.connect();
  try {
    const perIssue = async () => new Map((await client.query(`select work_item_ref->>'key' as k, count(*)::int as n from runs where repository_identifier = $1 group by 1`, [GITHUB_REPO])).rows.map((r) => [r.k, r.n]));
    const t0 = Date.now();
    let counts = new Map();
    for (;;) {
      counts = await perIssue();
      if (acked.every((n) => counts.has(String(n))) || Date.now() - t0 > 180_000) break;
      await sleep(250);
    }
    const recordedS = (Date.now() - t0) / 1000;
    const ackedSet = new Set(acked.map(String));
    const missing = acked.filter((n) => !counts.has(String(n))).length;
    const extra = [...counts].reduce((sum, [k, n]) => sum + (ackedSet.has(k) ? n - 1 : n), 0);
    // Then until the work is done (bounded): a server stopped mid-way would say little about failures.
    const left = async () => (await client.query(`select (select count(*) from runs where repository_identifier = $1 and status <> all($2))
      + (select count(*) from inbound_deliveries where door = 'github' and status = 'processing') as n`, [GITHUB_REPO, TERMINAL])).rows[0].n;
    while (Number(await left()) > 0 && Date.now() - t0 < 300_000) await sleep(250);
    const doneS = (Date.now() - t0) / 1000;
    const { rows } = await client.query(`select (select count(*) from inbound_deliveries where door = 'github' and status = 'failed')::int as failed,
      (select count(*) from runs where repository_identifier = $1 and status = 'completed')::int as completed`, [GITHUB_REPO]);
    return {
      perS: acked.length / seconds, acked: acked.length, errors, p50: pct(lat, 50), p99: pct(lat, 99),
      missing, extra, mismatches: missing + extra, recordedS, doneS, completed: rows[0].completed, failedDeliveries: rows[0].failed,
    };
  } finally {
    await client.end();
  }
}
