import Router from '@koa/router';
import { PrefixRouter } from '../../src/http/prefix-router.js';

const noop = async () => {};

/** The same routes on @koa/router's own matcher and on the prefix-filtered one. */
function both() {
  const routers = [new Router(), new PrefixRouter()];
  for (const r of routers) {
    r.get('/api/v1/runs', noop);
    r.post('/api/v1/runs', noop);
    r.get('/api/v1/runs/:id', noop);
    r.get('/api/v1/runs/:id/logs', noop);
    r.all('/api/v1', noop);
    r.all('/api/v1/*rest', noop);
    r.get('/v1/workflow-runs/:id/steps', noop);
    r.post('/sfp/api/flows/run', noop);
    r.get('/console/runs/:id', noop);
    r.get('/files/*path', noop);
    r.get(/^\/legacy\/\d+$/, noop);
    r.get('/Sensitive/Path', noop);
    r.get('/healthz', noop);
  }
  return routers;
}

const describeMatch = (m: ReturnType<Router['match']>) => ({
  layers: m.path.map((l) => String(l.path)), pathAndMethod: m.pathAndMethod.map((l) => `${l.methods.join(',')} ${String(l.path)}`), route: m.route,
});

test('matches exactly the layers, in the same order, that @koa/router itself matches', () => {
  const [plain, prefixed] = both();
  const paths = ['/api/v1/runs', '/api/v1/runs/', '/API/V1/RUNS/abc', '/api/v1/runs/abc/logs', '/api/v1/nothing/here', '/api/v1', '/api/v2/runs',
    '/v1/workflow-runs/x/steps', '/v1/workflow-runs/x', '/sfp/api/flows/run', '/sfp/api/flows/run/', '/console/runs/1', '/files/a/b/c',
    '/legacy/42', '/legacy/x', '/sensitive/path', '/healthz', '/', '', '/api/v1/runs%2F1', '/api/v1/runs/%7B'];
  let matched = 0;
  for (const path of paths) {
    for (const method of ['GET', 'POST', 'delete']) {
      const expected = describeMatch(plain.match(path, method));
      expect({ path, method, ...describeMatch(prefixed.match(path, method)) }).toEqual({ path, method, ...expected });
      matched += expected.layers.length;
    }
  }
  expect(matched).toBeGreaterThan(30); // the cases do match routes, not only miss them
});

test('routes added after the first request and prefixes set later are matched too', () => {
  const [plain, prefixed] = both();
  prefixed.match('/healthz', 'GET');
  for (const r of [plain, prefixed]) {
    r.get('/late/:id', noop);
    r.prefix('/base');
  }
  for (const path of ['/base/late/1', '/late/1', '/base/api/v1/runs', '/api/v1/runs']) {
    expect(describeMatch(prefixed.match(path, 'GET'))).toEqual(describeMatch(plain.match(path, 'GET')));
  }
  expect(prefixed.match('/base/late/1', 'GET').route).toBe(true);
});
