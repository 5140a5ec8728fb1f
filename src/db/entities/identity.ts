import { EntitySchema } from '@mikro-orm/core';

/** One person across the doors: email ↔ GitHub login ↔ Slack user id ↔ Azure DevOps unique name. */
export class Identity {
  email!: string;
  githubLogin?: string | null;
  slackUserId?: string | null;
  adoUniqueName?: string | null;
  updatedAt: Date = new Date();
}

export const IdentitySchema = new EntitySchema<Identity>({
  class: Identity,
  tableName: 'identities',
  properties: {
    email: { type: 'text', primary: true },
    githubLogin: { type: 'text', nullable: true },
    slackUserId: { type: 'text', nullable: true },
    adoUniqueName: { type: 'text', nullable: true },
    updatedAt: { type: 'datetime' },
  },
});
