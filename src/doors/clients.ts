import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { AdoClient } from './azure-devops/client.js';
import { GithubClient } from './github/client.js';
import { SlackChat } from './slack/chat.js';

/**
 * The API clients of the doors configured on this server, for the plugins that act through
 * them (`slack.*`, `github.*`, `azure_devops.*`). The same instances the doors use (each shared
 * per settings), so tokens, routes and who the bot is are learned once.
 */
export interface DoorClients {
  slack?: SlackChat;
  github?: GithubClient;
  azureDevOps?: AdoClient;
}

export function doorClients(config: Pick<Config, 'slack' | 'github' | 'azureDevOps'>, log: Logger): DoorClients {
  return {
    ...(config.slack ? { slack: SlackChat.for(config.slack, log.child({ door: 'slack' })) } : {}),
    ...(config.github ? { github: GithubClient.for(config.github, log) } : {}),
    ...(config.azureDevOps ? { azureDevOps: AdoClient.for(config.azureDevOps) } : {}),
  };
}
