import type { Run } from '../../db/entities/run.js';
import type { Actor } from '../audit/audit-log.js';
import { actorOf, callerLabel, canAccessProject, type Principal } from '../identity/principal.js';

/**
 * Who asks to cancel or rerun a run: a person a door resolved to an email, or an API token.
 * Every door and the REST API pass one of these to `RunService`, which applies one rule.
 */
export type RunRequester =
  | { person: { email: string }; door: string }
  | { principal: Principal; door: string };

/** What a requester asks to do to a run; the same rule decides them all. */
export type ControlVerb = 'cancel' | 'rerun' | 'retry' | 'pause' | 'resume' | 'control' | 'delete';

/** What `triggeredBy` a token's own runs carry: its person's email, else `app:<token name>`. */
export const startedByOf = (p: Principal): string => p.email ?? `app:${p.name}`;

/** How a requester appears in audit records and log lines. */
export function actorOfRequester(r: RunRequester): Actor {
  return 'principal' in r ? actorOf(r.principal, r.door) : { name: r.person.email.toLowerCase(), door: r.door };
}

/** What the new run of a rerun records as its trigger. */
export const triggeredByOfRequester = (r: RunRequester): string => ('principal' in r ? startedByOf(r.principal) : r.person.email.toLowerCase());

/**
 * Why `who` may not cancel or rerun `run`, or undefined when they may. Allowed:
 *  - an owner token with access to the run's project (it can already change who owns the project);
 *  - a person — or a token acting for one (its email) — who owns the project, is a member, or
 *    started the run (for a scheduled run: the schedule's author, `requestedBy`);
 *  - a token without a person, only for the runs it started itself (`triggeredBy: app:<its name>`).
 * Viewer and per-execution tokens never may. Pure, so the rule is the same for every door.
 */
export function controlRefusal(run: Pick<Run, 'repositoryIdentifier' | 'triggeredBy' | 'requestedBy'>, who: RunRequester, project: { owners: string[]; members: string[] } | null, verb: ControlVerb): string | undefined {
  const starters = [run.triggeredBy, run.requestedBy].filter((x): x is string => !!x).map((x) => x.toLowerCase());
  const owners = (project?.owners ?? []).map((e) => e.toLowerCase());
  const members = (project?.members ?? []).map((e) => e.toLowerCase());
  const rule = `only its project's owners and members, the person who started it, or the token that started it can ${verb} a run`;
  if ('principal' in who) {
    const p = who.principal;
    if (p.runId) return `${callerLabel(p)} is an execution token and may not ${verb} runs`;
    if (p.role === 'viewer') return `${callerLabel(p)} may only read`;
    if (!canAccessProject(p, run.repositoryIdentifier)) return `${callerLabel(p)} is not allowed to access project ${run.repositoryIdentifier}`;
    if (p.role === 'owner') return undefined;
    if (starters.includes(startedByOf(p).toLowerCase())) return undefined;
    const email = p.email?.toLowerCase();
    if (email && (owners.includes(email) || members.includes(email))) return undefined;
    return `${callerLabel(p)}${email ? ` (${email})` : ''} may not ${verb} run of ${run.repositoryIdentifier} started by ${run.triggeredBy}: ${rule}`;
  }
  const email = who.person.email.toLowerCase();
  if (owners.includes(email) || members.includes(email) || starters.includes(email)) return undefined;
  return `${email} may not ${verb} runs of ${run.repositoryIdentifier}: ${rule}`;
}
