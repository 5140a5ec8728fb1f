import type { Role } from '../../db/entities/api-token.js';
import { callerLabel, isUnscopedOwner, type Principal } from './principal.js';
import { roleAtMost } from './roles.js';

const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');

/**
 * What a token may do to other tokens. Pure: the refusal reason, or undefined when allowed.
 * A token creates only tokens of a role at most its own and projects within its own; a scoped
 * token cannot create an unscoped one (omitted projects mean every project).
 */
export function mintRefusal(issuer: Principal, wanted: { role: Role; projects?: string[] | null }): string | undefined {
  const who = `${callerLabel(issuer)} (${issuer.role})`;
  if (!roleAtMost(wanted.role, issuer.role))
    return `${who} may not create ${article(wanted.role)} ${wanted.role} token: a token creates only tokens of a role at most its own (owner > member > application > viewer)`;
  // Application tokens reach routes members may not (internal registration, flow type toggles).
  if (issuer.role === 'member' && wanted.role === 'application')
    return `${who} may not create an application token: only owners may`;
  if (issuer.projects === null) return undefined;
  const own = issuer.projects.join(', ') || 'none';
  if (!wanted.projects)
    return `${who} is limited to projects ${own}: it may not create a token for every project; list its projects (a subset of ${own})`;
  const outside = wanted.projects.filter((p) => !issuer.projects!.includes(p));
  if (outside.length) return `${who} may not create a token for project(s) ${outside.join(', ')}: outside its own (${own})`;
  return undefined;
}

/** An unscoped owner manages every token; any other token only those it created, and itself. */
export const mayManageToken = (p: Principal, token: { id: string; createdBy?: string | null }): boolean =>
  isUnscopedOwner(p) || token.id === p.tokenId || (token.createdBy ?? null) === p.tokenId;
