import { verifySignature } from '../../src/core/signing.js';
import { DispatchRefused, type CicdTarget, type DispatchJob } from '../../src/core/cicd/dispatcher.js';
import { WebhookDispatcher } from '../../src/core/cicd/webhook-dispatcher.js';

const SECRET = 'whsec-unit-0123456789abcdef';
const job: DispatchJob = {
  executionId: 'e-1', flowType: 'build', repositoryIdentifier: 'acme/app', payload: { id: 'build' },
  statusUrl: 'http://flowgate/sfp/api/flows/executions/e-1/status', token: 'fgx_secret',
};
const webhook: CicdTarget = { provider: 'webhook' };

/** A fetch that records what it was asked and answers with `status` and `body`. */
function fakeFetch(status: number, body = '') {
  const calls: { url: string; init: RequestInit }[] = [];
  const impl = (async (url: URL | string, init?: RequestInit) => {
    calls.push({ url: String(url), init: init! });
    return new Response(body, { status });
  }) as typeof fetch;
  return { calls, impl };
}

describe('WebhookDispatcher', () => {
  test('problems: no secret, no URL, a URL template that does not resolve', () => {
    expect(new WebhookDispatcher({ defaultUrl: 'http://ci', flowgateUrl: 'x' }).problem(webhook, {})).toMatch(/FLOWGATE_WEBHOOK_SECRET is not configured/);
    const d = new WebhookDispatcher({ secret: SECRET, flowgateUrl: 'x' });
    expect(d.problem(webhook, {})).toMatch(/no webhook URL: set cicd.url in the manifest or FLOWGATE_CICD_WEBHOOK_URL/);
    expect(d.problem({ provider: 'webhook', url: '{{ credentials.HOOK }}' }, {})).toMatch(/^cicd.url: /);
    expect(d.problem({ provider: 'webhook', url: '{{ credentials.HOOK }}' }, { HOOK: 'not a url' })).toBe('cicd.url does not resolve to an http(s) URL');
    expect(d.problem({ provider: 'webhook', url: '{{ credentials.HOOK }}' }, { HOOK: 'https://ci.example/hook' })).toBeUndefined();
  });

  test('posts the signed dispatch to the resolved URL and reads the pipeline ids from the answer', async () => {
    const f = fakeFetch(200, JSON.stringify({ cicdRunId: 42, cicdRunUrl: 'https://ci.example/42', other: 'ignored' }));
    const d = new WebhookDispatcher({ secret: SECRET, flowgateUrl: 'http://flowgate' }, f.impl);
    const answer = await d.dispatch(job, { provider: 'webhook', url: '{{ credentials.HOOK }}/start' }, { HOOK: 'https://ci.example/k3y' });
    expect(answer).toEqual({ cicdRunId: '42', cicdRunUrl: 'https://ci.example/42' });
    const [call] = f.calls;
    expect(call.url).toBe('https://ci.example/k3y/start');
    const body = call.init.body as string;
    expect(JSON.parse(body)).toEqual({ event: 'cicd.dispatch', ...job, flowgateUrl: 'http://flowgate' });
    const signature = (call.init.headers as Record<string, string>)['x-flowgate-signature-256'];
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(signature, body, SECRET, 'cicd.dispatch')).toBe(true);
    expect(verifySignature(signature, body, SECRET, 'run.notice')).toBe(false);
  });

  test('a 4xx answer is final, a 5xx is not; messages show only the origin, never a credential', async () => {
    const creds = { HOOK: 'https://ci.example/k3y-secret-path' };
    const target: CicdTarget = { provider: 'webhook', url: '{{ credentials.HOOK }}' };
    const refused = new WebhookDispatcher({ secret: SECRET, flowgateUrl: 'x' }, fakeFetch(404).impl).dispatch(job, target, creds);
    await expect(refused).rejects.toBeInstanceOf(DispatchRefused);
    await expect(refused).rejects.toThrow('dispatching run e-1 (webhook https://ci.example): HTTP 404');
    const failing = new WebhookDispatcher({ secret: SECRET, flowgateUrl: 'x' }, fakeFetch(502).impl).cancel({ executionId: 'e-1', cicdRunId: null }, target, creds);
    await expect(failing).rejects.not.toBeInstanceOf(DispatchRefused);
    await expect(failing).rejects.toThrow('cancelling run e-1 (webhook https://ci.example): HTTP 502');
    const unreachable = new WebhookDispatcher({ secret: SECRET, flowgateUrl: 'x' }, (async () => { throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }); }) as typeof fetch);
    await expect(unreachable.dispatch(job, target, creds)).rejects.toThrow('dispatching run e-1 (webhook https://ci.example): ECONNREFUSED');
  });

  test('a loopback or metadata cicd.url is refused for good, naming the address and never a credential', async () => {
    const d = new WebhookDispatcher({ secret: SECRET, flowgateUrl: 'x' });
    const target: CicdTarget = { provider: 'webhook', url: '{{ credentials.HOOK }}' };
    const loopback = d.dispatch(job, target, { HOOK: 'http://127.0.0.1:9/k3y-secret-path' });
    await expect(loopback).rejects.toBeInstanceOf(DispatchRefused);
    await expect(loopback).rejects.toThrow('dispatching run e-1 (webhook http://127.0.0.1:9): refused: 127.0.0.1 is a loopback address');
    const metadata = d.cancel({ executionId: 'e-1', cicdRunId: null }, target, { HOOK: 'http://169.254.169.254/latest/meta-data' });
    await expect(metadata).rejects.toBeInstanceOf(DispatchRefused);
    await expect(metadata).rejects.toThrow('169.254.169.254 is a cloud metadata address');
  });

  test('values after the base of cicd.url are percent-encoded', async () => {
    const f = fakeFetch(200);
    const d = new WebhookDispatcher({ secret: SECRET, flowgateUrl: 'x' }, f.impl);
    await d.dispatch(job, { provider: 'webhook', url: '{{ credentials.HOOK }}/jobs/{{ credentials.JOB }}' }, { HOOK: 'https://ci.example/api', JOB: '../admin?x' });
    expect(f.calls[0].url).toBe('https://ci.example/api/jobs/..%2Fadmin%3Fx');
  });
});
