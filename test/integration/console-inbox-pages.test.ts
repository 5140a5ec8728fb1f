import { signedIn, textOf } from '../support/console.js';
import { createProject, createToken, eventually, startRun, startTestServer, type TestServer } from '../support/server.js';

// More approvals than a page: the inbox shows the newest 200 of a section, says there are more,
// and pages on by keyset without repeating or skipping any.
let server: TestServer;
let approver: string;
const FLOOD = 203;

beforeAll(async () => {
  server = await startTestServer();
  await createProject(server, 'acme/flood', { owners: ['flood@acme.io'] });
  await createProject(server, 'acme/quiet', { owners: ['quiet@acme.io'] });
  approver = await createToken(server, { name: 'flood', role: 'owner', email: 'flood@acme.io' });
  const starts = Array.from({ length: FLOOD }, (_, i) => i);
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (starts.length) { starts.pop(); await startRun(server, 'gated-log', { repositoryIdentifier: 'acme/flood' }); }
  }));
  await startRun(server, 'gated-log', { repositoryIdentifier: 'acme/quiet' });
  const pending = () => server.services.orm.em.fork().getConnection().execute(`select count(*)::int as n from approvals where status = 'pending'`);
  await eventually(async () => ((await pending())[0].n === FLOOD + 1 ? true : undefined), 60_000, `${FLOOD + 1} pending approvals`);
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

const cardIds = (html: string, section: 'mine' | 'others') => {
  const part = html.split('<section aria-labelledby="others">')[section === 'mine' ? 0 : 1];
  return [...part.matchAll(/<article[^>]* id="approval-([0-9a-f-]{36})"/g)].map((m) => m[1]);
};

test('the newest 200 first, "200+" in the heading and the badge, then the older ones: each approval once', async () => {
  const c = await signedIn(server.url, approver);
  const first = await c.page('/console');
  const text = textOf(first.html);
  expect(text).toContain('Waiting on you (200+)');
  expect(first.html).toMatch(/<span class="badge" aria-label="200\+ waiting on you">200\+<\/span>/);
  const page1 = cardIds(first.html, 'mine');
  expect(page1).toHaveLength(200);
  // The quiet project's request is not flood@'s to decide: it is in the other section, once.
  expect(text).toContain('Other pending approvals in your projects (1)');
  expect(cardIds(first.html, 'others')).toHaveLength(1);

  const older = /<a href="(\/console\?mine=[^"#]+)#mine" rel="next">Older approvals<\/a>/.exec(first.html);
  expect(older).not.toBeNull();
  const second = await c.page(older![1].replace(/&amp;/g, '&'));
  expect(second.status).toBe(200);
  expect(textOf(second.html)).toContain('Waiting on you (older)');
  const page2 = cardIds(second.html, 'mine');
  expect(page2).toHaveLength(FLOOD - 200);
  expect(second.html).not.toContain('rel="next"');
  expect(second.html).toContain('<a href="/console#mine">Newest</a>');
  const all = new Set([...page1, ...page2]);
  expect(all.size).toBe(FLOOD);
  const inDb = await server.services.orm.em.fork().getConnection().execute(`select id from approvals where repository_identifier = 'acme/flood' and status = 'pending'`);
  expect([...all].sort()).toEqual(inDb.map((r) => String(r.id)).sort());

  // Other console pages show the same capped badge.
  expect((await c.page('/console/runs')).html).toContain('aria-label="200+ waiting on you"');
});

test('a page cursor that is not one is a 400 naming the parameter', async () => {
  const c = await signedIn(server.url, approver);
  const r = await c.get('/console?mine=yesterday');
  expect(r.status).toBe(400);
  expect(textOf(r.html)).toMatch(/mine.*not an inbox page/);
});
