import { BigIntType, EntitySchema } from '@mikro-orm/core';

/** One person across the doors: email ↔ GitHub user (id and login) ↔ Slack user id ↔ Azure DevOps unique name. */
export class Identity {
  email!: string;
  githubLogin?: string | null;
  /** GitHub's numeric user id: unlike the login it never changes hands. */
  githubUserId?: number | null;
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
    githubUserId: { type: new BigIntType('number'), nullable: true },
    slackUserId: { type: 'text', nullable: true },
    adoUniqueName: { type: 'text', nullable: true },
    updatedAt: { type: 'datetime' },
  },
});
