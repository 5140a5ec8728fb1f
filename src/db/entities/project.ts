import { EntitySchema } from '@mikro-orm/core';

export type Provider = 'github' | 'azure-devops';

export interface ProjectSettings {
  /** Flow types that may not be started for this project. */
  disabledFlowTypes: string[];
  /** Flow type id → the flow type that runs instead. */
  overrides: Record<string, string>;
  /** Signs webhook deliveries of this project's approvals; write-only through the API. */
  webhookSecret?: string;
  /** Azure DevOps: the flow type a work item starts, by its type (on creation) or by a tag (at creation or added later). */
  workItemFlows?: WorkItemFlows;
  /** GitHub: issue label → the flow type an issue opened or labelled with it starts. */
  labelFlows?: Record<string, string>;
  /** Named approver groups a flow can name (`approvers: group:security`): name → emails. */
  approverGroups?: Record<string, string[]>;
}

export interface WorkItemFlows {
  byType?: Record<string, string>;
  byTag?: Record<string, string>;
}

export class Project {
  repositoryIdentifier!: string;
  /** The project's name in the workflow platform API (unique; `acme.app` for `acme/app` unless chosen). */
  namespace!: string;
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
    namespace: { type: 'text', unique: true },
    provider: { type: 'text' },
    owners: { type: 'json' },
    members: { type: 'json' },
    slackChannel: { type: 'text', nullable: true },
    settings: { type: 'json' },
    createdAt: { type: 'datetime', onCreate: () => new Date() },
    updatedAt: { type: 'datetime', onCreate: () => new Date(), onUpdate: () => new Date() },
  },
});
