import type Router from '@koa/router';
import type { Services } from '../../container.js';
import type { Door } from '../door.js';
import { registerInboundHandler } from '../inbound.js';
import { GithubClient } from './client.js';
import { GithubDestination } from './destination.js';
import { inboundHandler } from './handle.js';
import { RepoPermissions } from './permission.js';
import { mountWebhook } from './webhook.js';

/** Why the GitHub door is off, naming what turns it on. */
export const GITHUB_OFF = 'GitHub (set GITHUB_APP_ID, GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH, and GITHUB_WEBHOOK_SECRET to turn it on)';

/**
 * The GitHub door: a GitHub App. Webhooks arrive at `POST /github/webhooks` (signed; processed
 * durably after a 202); runs started from an issue or pull request talk back there.
 */
export function githubDoor(s: Services): Door {
  const settings = s.config.github;
  if (!settings) throw new Error('the GitHub door needs config.github');
  const log = s.log.child({ door: 'github' });
  const gh = GithubClient.for(settings, log);
  const permissions = new RepoPermissions((repo, login, installationId) => gh.roleOf(repo, login, installationId));
  registerInboundHandler('github', inboundHandler(s, gh, permissions, log));
  return {
    name: 'github',
    mount: (router: Router) => mountWebhook(router, s, settings.webhookSecrets),
    destination: new GithubDestination(s, gh),
  };
}
