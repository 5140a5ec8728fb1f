import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createDoors } from '../../src/doors/index.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { freshDatabaseUrl } from '../support/database.js';
import { ADMIN_TOKEN, FIXTURE_FLOWS } from '../support/server.js';

// Without SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET the Slack door is off: no route, and start-up says so.
let server: RunningServer;
const lines: string[] = [];

beforeAll(async () => {
  const config = loadConfig({
    DATABASE_URL: await freshDatabaseUrl(path.basename(expect.getState().testPath ?? 'slack-off', '.test.ts')),
    PORT: '0', HOST: '127.0.0.1', FLOWGATE_ADMIN_TOKEN: ADMIN_TOKEN, FLOWGATE_MANIFESTS_DIR: FIXTURE_FLOWS,
    FLOWGATE_EXECUTOR_ID: `test-${process.env.JEST_WORKER_ID ?? '0'}`, FLOWGATE_SHUTDOWN_TIMEOUT_MS: '2000',
  });
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk)).msg); done(); } });
  server = await startServer(config, pino({ level: 'info' }, sink));
});
afterAll(async () => {
  await server?.stop();
});

test('the door is off, says so at start, and /slack/events does not exist', async () => {
  expect(server.services.config.slack).toBeUndefined();
  expect(lines).toContain('Door off: Slack (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to turn it on)');
  const { doors, off } = createDoors(server.services);
  expect(doors.map((d) => d.name)).not.toContain('slack');
  expect(off.filter((o) => o.startsWith('Slack'))).toEqual(['Slack (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to turn it on)']);
  const r = await fetch(`${server.url}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"url_verification","challenge":"c"}' });
  expect(r.status).toBe(404);
});

test('half the settings is a configuration error naming what is missing', () => {
  const attempt = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  expect(attempt({ SLACK_BOT_TOKEN: 'xoxb-1' })).toEqual(['SLACK_SIGNING_SECRET: required for the Slack door (set with SLACK_BOT_TOKEN)']);
  expect(attempt({ SLACK_SIGNING_SECRET: 'a-signing-secret-of-length' })).toEqual(['SLACK_BOT_TOKEN: required for the Slack door (set with SLACK_SIGNING_SECRET)']);
});
