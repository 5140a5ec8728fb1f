// The web console's two heaviest pages, timed as a signed-in browser fetches them: the inbox with
// 10,000 approvals pending (the page shows the newest 200 of each section) and the page of a
// finished 100-step run (graph laid out on the server, step table, logs, timeline). Next to each,
// the reference: the one PostgreSQL statement the page cannot do without, timed from a raw client.
import pg from 'pg';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN; };

/** Signs in through the console's token form, as a person pasting a token would; answers the session cookie. */
async function signIn(url, token) {
  const form = await fetch(`${url}/console/login`);
  const html = await form.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)[1];
  const loginCookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const res = await fetch(`${url}/console/login/token`, {
    method: 'POST', redirect: 'manual',
    headers: { cookie: loginCookie, origin: url, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, token }).toString(),
  });
  const session = res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c.startsWith('fg_session='));
  if (res.status !== 303 || !session) throw new Error(`console sign-in answered ${res.status}`);
  return session;
}

async function timed(n, fn) {
  const lat = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    lat.push(performance.now() - t);
  }
  return { p50: pct(lat, 50), p95: pct(lat, 95) };
}

async function page(url, path, cookie, expect) {
  const res = await fetch(url + path, { headers: { cookie } });
  const html = await res.text();
  if (res.status !== 200 || !expect.test(html)) throw new Error(`GET ${path}: HTTP ${res.status}, not the page expected`);
  return html.length;
}

/**
 * `pending` runs of `gated-log` started over REST (16 at a time) and left at their approval, one
 * `hundred-steps` run to its end; then each page fetched `samples` times after a warm-up.
 */
export async function consolePages(server, headers, { pending, samples }) {
  const post = async (path, body, h = headers) => {
    const res = await fetch(server.url + path, { method: 'POST', headers: h, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`POST ${path}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  };
  const { token } = await post('/api/v1/tokens', { name: 'console-viewer', role: 'owner', email: 'owner@bench.io' });
  const db = new pg.Client({ connectionString: server.dbUrl });
  await db.connect();
  try {
    const countPending = async () => Number((await db.query(`select count(*) from approvals where status = 'pending' and repository_identifier = 'bench/app'`)).rows[0].count);
    const already = await countPending();
    let next = 0;
    const toStart = Math.max(0, pending - already);
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < toStart) {
        next += 1;
        await post('/sfp/api/flows/run', { payload: { id: 'gated-log', repositoryIdentifier: 'bench/app' } });
      }
    }));
    for (let i = 0; (await countPending()) < pending; i++) {
      if (i > 1200) throw new Error(`only ${await countPending()} of ${pending} approvals opened`);
      await sleep(250);
    }
    // A table filled in bulk, as autovacuum would leave it: its statistics current.
    await db.query('analyze approvals');
    const { id: runId } = await post('/sfp/api/flows/run', { payload: { id: 'hundred-steps', repositoryIdentifier: 'bench/app' } });
    for (let i = 0; ; i++) {
      const { rows } = await db.query('select status from runs where id = $1', [runId]);
      if (rows[0]?.status === 'completed') break;
      if (i > 1200 || ['failed', 'cancelled'].includes(rows[0]?.status)) throw new Error(`the 100-step run did not complete (${rows[0]?.status})`);
      await sleep(100);
    }

    const cookie = await signIn(server.url, token);
    const inboxBytes = await page(server.url, '/console', cookie, /Waiting on you/);
    const runBytes = await page(server.url, `/console/runs/${runId}`, cookie, /l10s10/);
    const inbox = await timed(samples, () => page(server.url, '/console', cookie, /Waiting on you/));
    const run = await timed(samples, () => page(server.url, `/console/runs/${runId}`, cookie, /l10s10/));
    // What the pages cannot do without: the newest pending approvals, and the run's steps.
    const inboxRef = await timed(samples, () => db.query(`select * from approvals where status = 'pending' and repository_identifier = any($1::text[]) order by requested_at desc, id desc limit 200`, [['bench/app']]));
    const runRef = await timed(samples, () => db.query('select * from step_runs where run_id = $1', [runId]));
    return { pending: await countPending(), samples, inbox, inboxRef, inboxKb: inboxBytes / 1024, run, runRef, runKb: runBytes / 1024 };
  } finally {
    await db.end();
  }
}

export function consoleRows(c, round) {
  const spread = (x) => `p50 ${round(x.p50)} ms · p95 ${round(x.p95)} ms`;
  return [
    [`Console inbox page, ${c.pending.toLocaleString('en')} approvals pending (${round(c.inboxKb)} KB of HTML)`, spread(c.inbox), `newest 200 pending approvals: ${spread(c.inboxRef)}`, `${round(c.inbox.p95 / c.inboxRef.p95)}×`, ''],
    [`Console run page, a 100-step run (${round(c.runKb)} KB of HTML)`, spread(c.run), `its step rows: ${spread(c.runRef)}`, `${round(c.run.p95 / c.runRef.p95)}×`, ''],
  ];
}
