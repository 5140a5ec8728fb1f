import { createProject, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  await createProject(server, 'acme/big');
  await createProject(server, 'acme/small');
  await server.services.orm.em.getConnection().execute(`insert into runs (id, engine_run_id, task_type, flow_path, category, execution_mode, repository_identifier, status, payload, definition, triggered_by, created_at)
    select gen_random_uuid(), 'seed-' || g, 'parallel', 'parallel', 'testing', 'flow', case when g <= 12000 then 'acme/big' else 'acme/small' end, 'completed', '{}', '{}', 'seed', now() - (g || ' seconds')::interval
    from generate_series(1, 12030) g`);
  await server.services.orm.em.getConnection().execute('analyze runs');
});
afterAll(async () => { await server?.stop(); });

test('totalCount is exact up to 10,000 matches and the planner\'s estimate beyond, flagged as such', async () => {
  const small = (await server.call('GET', '/sfp/api/flows/runs?repositoryIdentifier=acme/small&limit=5')).body;
  expect(small).toMatchObject({ count: 5, totalCount: 30, page: 1 });
  expect(small).not.toHaveProperty('totalCountIsEstimate');
  const big = (await server.call('GET', '/sfp/api/flows/runs?repositoryIdentifier=acme/big&limit=5&page=3')).body;
  expect(big).toMatchObject({ count: 5, page: 3, totalCountIsEstimate: true });
  expect(big.totalCount).toBeGreaterThan(10_000);
  expect(Math.abs(big.totalCount - 12_000)).toBeLessThan(1_500);
});
