import { AZURE_DEVOPS_PLUGINS } from './azure-devops.js';
import { GITHUB_PLUGINS } from './github.js';
import { SLACK_PLUGINS } from './slack.js';

/** The plugins that act through the Slack, GitHub and Azure DevOps doors' API clients. */
export const SAAS_PLUGINS = [...SLACK_PLUGINS, ...GITHUB_PLUGINS, ...AZURE_DEVOPS_PLUGINS];
