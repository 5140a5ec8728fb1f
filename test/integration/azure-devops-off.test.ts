import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createDoors } from '../../src/doors/index.js';
import { AZURE_DEVOPS_OFF } from '../../src/doors/azure-devops/index.js';
import { FIXTURE_FLOWS, createProject, startTestServer, waitForRun, type TestServer } from '../support/server.js';

// Without its settings the Azure DevOps door is off: no hook endpoint, azure-pipelines flow types
// are refused as not configured, and work-item callbacks are reported as undeliverable.

const FLOWS = '/sfp/api/flows';
let server: TestServer;
let flowsDir: string;

beforeAll(async () => {
  flowsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowgate-ado-off-'));
  for (const f of fs.readdirSync(FIXTURE_FLOWS)) fs.copyFileSync(path.join(FIXTURE_FLOWS, f), path.join(flowsDir, f));
  fs.writeFileSync(path.join(flowsDir, 'ado-build.yaml'), 'id: ado-build\nname: ADO build\nexecutionMode: cicd\ncicd:\n  provider: azure-pipelines\n  pipeline: 7\n');
  server = await startTestServer({ flows: flowsDir });
  await createProject(server, 'acme/proj/app', { provider: 'azure-devops' });
});

afterAll(async () => {
  await server?.stop();
  fs.rmSync(flowsDir, { recursive: true, force: true });
});

test('the door says it is off, naming the variables that turn it on', () => {
  const { doors, off } = createDoors(server.services);
  expect(doors.map((d) => d.name)).not.toContain('azure-devops');
  expect(off).toContain(AZURE_DEVOPS_OFF);
  for (const v of ['AZURE_DEVOPS_ORG_URL', 'AZURE_DEVOPS_TOKEN', 'AZURE_DEVOPS_HOOK_USERNAME', 'AZURE_DEVOPS_HOOK_PASSWORD']) expect(AZURE_DEVOPS_OFF).toContain(v);
});

test('a partial configuration stops start-up, naming what is missing', () => {
  expect(() => loadConfig({ AZURE_DEVOPS_ORG_URL: 'https://dev.azure.com/acme', AZURE_DEVOPS_TOKEN: 'pat' })).toThrow(ConfigError);
  try {
    loadConfig({ AZURE_DEVOPS_ORG_URL: 'https://dev.azure.com/acme', AZURE_DEVOPS_TOKEN: 'pat' });
  } catch (err) {
    expect((err as ConfigError).problems).toEqual([
      expect.stringMatching(/^AZURE_DEVOPS_HOOK_USERNAME: required for the Azure DevOps door/),
      expect.stringMatching(/^AZURE_DEVOPS_HOOK_PASSWORD: required for the Azure DevOps door/),
    ]);
  }
});

test('no hook endpoint', async () => {
  const r = await fetch(`${server.url}/azure-devops/hooks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":"x","eventType":"workitem.created"}' });
  expect(r.status).toBe(404);
});

test('an azure-pipelines flow type answers 400 "not configured"', async () => {
  const r = await server.call('POST', `${FLOWS}/run`, { payload: { id: 'ado-build', repositoryIdentifier: 'acme/proj/app' } });
  expect(r.status).toBe(400);
  expect(JSON.stringify(r.body)).toMatch(/azure-pipelines, which this server cannot dispatch to/);
});

test('a run whose callback is a work item reports the callback as undeliverable', async () => {
  const r = await server.call('POST', `${FLOWS}/run`, {
    payload: { id: 'notifier', repositoryIdentifier: 'acme/proj/app', text: 'hi' },
    callback: { type: 'azure-devops', azureDevOps: { repositoryIdentifier: 'acme/proj/app', workItemId: 12 } },
  });
  expect(r.status).toBe(201);
  const done = await waitForRun(server, r.body.id);
  expect(done.status).toBe('Completed');
  expect(done.steps[0].output).toEqual({ delivered: false, message: 'hi', reason: 'no azure-devops integration is configured on this server' });
});
