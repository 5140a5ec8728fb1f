import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from '../../db/sql.js';
import { forbidden } from '../../errors.js';
import { callerLabel, isUnscopedOwner, type Principal } from './principal.js';

/**
 * Whose identity a token may act on. The doors resolve people through the identity directory (and
 * a token's email is who it decides approvals as), so whoever links a chat identity to an email, or
 * mints a token with it, can act as that person. An unscoped owner may for anyone; a scoped owner
 * only for people (owners and members) of its projects who are people of no project outside them —
 * otherwise adding someone to its own project first would let it take over their approvals elsewhere.
 */
export class PersonScope {
  constructor(private readonly orm: MikroORM) {}

  /** The projects where `email` is an owner or member. */
  async projectsOf(email: string): Promise<string[]> {
    const key = JSON.stringify([email.toLowerCase()]);
    const rows = await sql<{ repository_identifier: string }>(this.orm,
      'select repository_identifier from projects where owners @> ?::jsonb or members @> ?::jsonb order by repository_identifier', [key, key]);
    return rows.map((r) => r.repository_identifier);
  }

  /** Owners and members of these projects. */
  async peopleOf(repositoryIdentifiers: string[]): Promise<Set<string>> {
    const rows = await sql<{ email: string }>(this.orm,
      'select distinct jsonb_array_elements_text(owners || members) as email from projects where repository_identifier = any(?)', [repositoryIdentifiers]);
    return new Set(rows.map((r) => r.email.toLowerCase()));
  }

  /** Why `p` may not change `email`'s identity links, or undefined. */
  async manageRefusal(p: Principal, email: string): Promise<string | undefined> {
    if (isUnscopedOwner(p)) return undefined;
    if (p.role !== 'owner') return `${callerLabel(p)} (${p.role}) may not change identities: owners only`;
    const own = p.projects ?? [];
    const theirs = await this.projectsOf(email);
    const outside = theirs.filter((r) => !own.includes(r));
    if (theirs.length === outside.length)
      return `${email} is not an owner or member of any project of token "${p.name}" (${own.join(', ') || 'none'}): a project-scoped owner acts only for people of its projects`;
    if (outside.length)
      return `${email} is also an owner or member of ${outside.join(', ')}, outside the projects of token "${p.name}": only an unscoped owner may act for them`;
    return undefined;
  }

  async requireMayManage(p: Principal, email: string): Promise<void> {
    const reason = await this.manageRefusal(p, email);
    if (reason) throw forbidden(reason);
  }

  /** Reads: an unscoped token sees everyone; a scoped one the people of its projects. Null means everyone. */
  async visibleTo(p: Principal): Promise<Set<string> | null> {
    return p.projects === null ? null : this.peopleOf(p.projects);
  }
}
