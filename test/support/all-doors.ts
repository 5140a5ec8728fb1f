import { FakeGithub, appKey } from '../fakes/github.js';
import { FakeSlack } from '../fakes/slack.js';
import { startTestServer, type TestServer } from './server.js';

/** Secrets of the doors a server from `startWithAllDoors` checks requests against. */
export const DOOR_SECRETS = {
  slack: 'slack-signing-secret-0123456789',
  github: 'github-webhook-secret-0123456789',
  adoUser: 'hooks',
  adoPassword: 'ado-hook-password-0123456789',
} as const;

export interface AllDoors {
  server: TestServer;
  slack: FakeSlack;
  github: FakeGithub;
  stop(): Promise<void>;
}

/**
 * An in-process server with the Slack, GitHub and Azure DevOps doors all on: Slack and GitHub
 * answered by their fakes, Azure DevOps pointing at a closed port (for tests that never get past
 * its hook's credentials, or that expect its API to be unreachable).
 */
export async function startWithAllDoors(): Promise<AllDoors> {
  const key = appKey();
  const slack = await new FakeSlack().start();
  const github = await new FakeGithub('4242', key.publicKey).start();
  const server = await startTestServer({ env: {
    SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: DOOR_SECRETS.slack, SLACK_API_URL: `${slack.url}/api/`,
    GITHUB_APP_ID: '4242', GITHUB_PRIVATE_KEY: key.privateKey, GITHUB_WEBHOOK_SECRET: DOOR_SECRETS.github, GITHUB_API_URL: github.url,
    AZURE_DEVOPS_ORG_URL: 'http://127.0.0.1:9/acme', AZURE_DEVOPS_TOKEN: 'pat',
    AZURE_DEVOPS_HOOK_USERNAME: DOOR_SECRETS.adoUser, AZURE_DEVOPS_HOOK_PASSWORD: DOOR_SECRETS.adoPassword,
  } });
  return {
    server, slack, github,
    async stop() {
      await server.stop();
      await slack.stop?.();
      await github.stop?.();
    },
  };
}
