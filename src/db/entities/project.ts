import { EntitySchema } from '@mikro-orm/core';

export type Provider = 'github' | 'azure-devops';

export interface ProjectSettings {
  /** Flow types that may not be started for this project. */
  disabledFlowTypes: string[];
  /** Flow type id → the flow type that runs instead. */
  overrides: Record<string, string>;
  /** Signs webhook deliveries of this project's approvals; write-only through the API. */
  webhookSecret?: string;
}

export class Project {
  repositoryIdentifier!: string;
  provider!: Provider;
  owners: string[] = [];
  members: string[] = [];
  slackChannel?: string | null;
  settings: ProjectSettings = { disabledFlowTypes: [], overrides: {} };
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const ProjectSchema = new EntitySchema<Project>({
  class: Project,
  tableName: 'projects',
  properties: {
    repositoryIdentifier: { type: 'text', primary: true },
    provider: { type: 'text' },
    owners: { type: 'json' },
    members: { type: 'json' },
    slackChannel: { type: 'text', nullable: true },
    settings: { type: 'json' },
    createdAt: { type: 'datetime', onCreate: () => new Date() },
    updatedAt: { type: 'datetime', onCreate: () => new Date(), onUpdate: () => new Date() },
  },
});
