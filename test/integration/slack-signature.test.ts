import fs from 'node:fs';
import { parse } from 'yaml';
import { EVENTS_PATH, parseBody } from '../../src/doors/slack/receiver.js';
import { verifySlackSignature } from '../../src/doors/slack/verify.js';
import { afterMention } from '../../src/doors/slack/listeners.js';
import { slackSignature } from '../fakes/slack.js';

// Slack's request signing, body parsing and the app manifest (no server): v0 HMAC-SHA256 over `v0:{ts}:{raw body}`.
const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
// The example from Slack's documentation (https://api.slack.com/authentication/verifying-requests-from-slack).
const DOC_BODY = 'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
const DOC_TS = 1531420618;
const DOC_SIG = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';
const at = (seconds: number) => seconds * 1000;
const headers = (ts: number | string, sig: string) => ({ 'x-slack-request-timestamp': String(ts), 'x-slack-signature': sig });

test("Slack's documented example verifies", () => {
  expect(verifySlackSignature(DOC_BODY, headers(DOC_TS, DOC_SIG), SECRET, at(DOC_TS))).toEqual({ ok: true });
  expect(slackSignature(SECRET, DOC_TS, DOC_BODY)).toBe(DOC_SIG);
  expect(verifySlackSignature(Buffer.from(DOC_BODY), headers(DOC_TS, DOC_SIG), SECRET, at(DOC_TS))).toEqual({ ok: true });
});

test('within five minutes either way; beyond, refused', () => {
  const check = (now: number) => verifySlackSignature(DOC_BODY, headers(DOC_TS, DOC_SIG), SECRET, now).ok;
  expect(check(at(DOC_TS + 300))).toBe(true);
  expect(check(at(DOC_TS - 300))).toBe(true);
  expect(check(at(DOC_TS + 301))).toBe(false);
  expect(check(at(DOC_TS - 301))).toBe(false);
  expect(verifySlackSignature(DOC_BODY, headers(DOC_TS, DOC_SIG), SECRET, at(DOC_TS + 3600))).toEqual({ ok: false, reason: 'x-slack-request-timestamp is more than 5 minutes from the server clock' });
});

test('any change to body, timestamp, secret or signature is refused', () => {
  const now = at(DOC_TS);
  const refused = (body: string, h: Record<string, string | undefined>, secret = SECRET) => verifySlackSignature(body, h, secret, now).ok === false;
  expect(refused(`${DOC_BODY}&x=1`, headers(DOC_TS, DOC_SIG))).toBe(true);
  expect(refused(DOC_BODY, headers(DOC_TS + 1, DOC_SIG))).toBe(true);
  expect(refused(DOC_BODY, headers(DOC_TS, DOC_SIG), `${SECRET}x`)).toBe(true);
  expect(refused(DOC_BODY, headers(DOC_TS, DOC_SIG.replace(/.$/, '0')))).toBe(true);
  expect(refused(DOC_BODY, headers(DOC_TS, DOC_SIG.slice(0, -2)))).toBe(true);
  expect(refused(DOC_BODY, headers(DOC_TS, DOC_SIG.replace('v0=', 'v1=')))).toBe(true);
  expect(refused(DOC_BODY, headers('1531420618.5', DOC_SIG))).toBe(true);
  expect(refused(DOC_BODY, { 'x-slack-signature': DOC_SIG })).toBe(true);
  expect(refused(DOC_BODY, { 'x-slack-request-timestamp': String(DOC_TS) })).toBe(true);
  expect(refused(DOC_BODY, headers(DOC_TS, DOC_SIG), '')).toBe(true);
});

test('bodies: commands are form fields, interactions a JSON payload field, events JSON', () => {
  expect(parseBody('command=%2Fflowgate&text=run+x+a%3D%22b+c%22', 'application/x-www-form-urlencoded')).toEqual({ command: '/flowgate', text: 'run x a="b c"' });
  expect(parseBody(`payload=${encodeURIComponent('{"type":"block_actions"}')}`, 'application/x-www-form-urlencoded')).toEqual({ type: 'block_actions' });
  expect(parseBody('{"type":"event_callback"}', 'application/json; charset=utf-8')).toEqual({ type: 'event_callback' });
  expect(parseBody('{not json', 'application/json')).toBeUndefined();
  expect(parseBody('payload=%7Bnot', 'application/x-www-form-urlencoded')).toBeUndefined();
  expect(parseBody('[1]', 'application/json')).toBeUndefined();
});

test('the words after a mention of the bot', () => {
  expect(afterMention('<@U0BOT> run gated target=x')).toBe('run gated target=x');
  expect(afterMention('hey <@U0BOT|flowgate>   status 123 ')).toBe('status 123');
  expect(afterMention('<@U0BOT>')).toBe('');
});

test('the app manifest asks for the scopes used and points everything at /slack/events', () => {
  const m = parse(fs.readFileSync(new URL('../../manifests/slack-app.yaml', import.meta.url), 'utf8'));
  expect(m.oauth_config.scopes.bot.sort()).toEqual(['app_mentions:read', 'chat:write', 'commands', 'users:read', 'users:read.email']);
  const url = `https://flowgate.example.com${EVENTS_PATH}`;
  // SLACK_COMMAND's default.
  expect(m.features.slash_commands).toEqual([expect.objectContaining({ command: '/flowgate', url })]);
  expect(m.settings.interactivity).toEqual({ is_enabled: true, request_url: url });
  expect(m.settings.event_subscriptions).toEqual({ request_url: url, bot_events: ['app_mention'] });
});
