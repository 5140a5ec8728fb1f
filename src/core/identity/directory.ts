import type { MikroORM } from '@mikro-orm/postgresql';
import { Identity } from '../../db/entities/identity.js';
import { conflict, notFound } from '../../errors.js';
import type { Actor, AuditLog } from '../audit/audit-log.js';

export interface IdentityLinks {
  githubLogin?: string | null;
  slackUserId?: string | null;
  adoUniqueName?: string | null;
}

/** The identity directory: every door resolves its user to one email through it. */
export class IdentityDirectory {
  constructor(private readonly orm: MikroORM, private readonly audit: AuditLog) {}

  list(): Promise<Identity[]> {
    return this.orm.em.fork().find(Identity, {}, { orderBy: { email: 'asc' } });
  }

  async get(email: string): Promise<Identity> {
    const found = await this.orm.em.fork().findOne(Identity, { email: email.toLowerCase() });
    if (!found) throw notFound(`No identity for ${email}`);
    return found;
  }

  async put(email: string, links: IdentityLinks, actor: Actor): Promise<{ identity: Identity; created: boolean }> {
    const em = this.orm.em.fork();
    const key = email.toLowerCase();
    let identity = await em.findOne(Identity, { email: key });
    const created = !identity;
    if (!identity) {
      identity = Object.assign(new Identity(), { email: key });
      em.persist(identity);
    }
    identity.githubLogin = links.githubLogin ?? null;
    identity.slackUserId = links.slackUserId ?? null;
    identity.adoUniqueName = links.adoUniqueName ?? null;
    identity.updatedAt = new Date();
    try {
      await em.flush();
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw conflict('Another identity already uses that GitHub login, Slack user id or Azure DevOps name');
      throw err;
    }
    await this.audit.record(actor, created ? 'identity.created' : 'identity.updated', 'identity', key, { ...links });
    return { identity, created };
  }

  async delete(email: string, actor: Actor): Promise<void> {
    const removed = await this.orm.em.fork().nativeDelete(Identity, { email: email.toLowerCase() });
    if (!removed) throw notFound(`No identity for ${email}`);
    await this.audit.record(actor, 'identity.deleted', 'identity', email.toLowerCase());
  }

  async emailByGithub(login: string): Promise<string | undefined> {
    const rows = await this.orm.em.fork().getConnection().execute<{ email: string }[]>('select email from identities where lower(github_login) = lower(?)', [login]);
    return rows[0]?.email;
  }

  async emailBySlack(userId: string): Promise<string | undefined> {
    return (await this.orm.em.fork().findOne(Identity, { slackUserId: userId }))?.email;
  }

  async emailByAdo(uniqueName: string): Promise<string | undefined> {
    const rows = await this.orm.em.fork().getConnection().execute<{ email: string }[]>('select email from identities where lower(ado_unique_name) = lower(?)', [uniqueName]);
    return rows[0]?.email;
  }
}

export const presentIdentity = (i: Identity) => ({
  email: i.email, githubLogin: i.githubLogin ?? null, slackUserId: i.slackUserId ?? null, adoUniqueName: i.adoUniqueName ?? null,
  updatedAt: i.updatedAt.toISOString(),
});
