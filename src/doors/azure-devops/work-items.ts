import type { WorkItemFlows } from '../../db/entities/project.js';
import type { FlowDefinition } from '../../core/registry/manifest-schema.js';
import { htmlToText, looksLikeHtml } from './html.js';

/** An Azure DevOps identity as the REST API gives it (`IdentityRef`) or as older payloads do (`Name <unique>`). */
export interface AdoIdentity {
  uniqueName: string;
  displayName: string;
}

export function identityOf(value: unknown): AdoIdentity | undefined {
  if (!value) return undefined;
  if (typeof value === 'string') {
    const m = /^(.*?)\s*<([^<>]+)>\s*$/.exec(value);
    return m ? { displayName: m[1] || m[2], uniqueName: m[2] } : { displayName: value, uniqueName: value };
  }
  if (typeof value === 'object') {
    const v = value as { uniqueName?: unknown; displayName?: unknown };
    if (typeof v.uniqueName === 'string' && v.uniqueName) return { uniqueName: v.uniqueName, displayName: typeof v.displayName === 'string' ? v.displayName : v.uniqueName };
  }
  return undefined;
}

/** `System.Tags` (`"deploy; urgent"`) → `['deploy', 'urgent']`. */
export const tagsOf = (value: unknown): string[] =>
  typeof value === 'string' ? value.split(';').map((t) => t.trim()).filter(Boolean) : [];

/** `https://dev.azure.com/acme` → `acme`; `https://acme.visualstudio.com` → `acme`; `…/tfs/Coll` → `Coll`. */
export function organizationOf(orgUrl: string): string {
  const url = new URL(orgUrl);
  const segments = url.pathname.split('/').filter(Boolean);
  return decodeURIComponent(segments.at(-1) ?? url.hostname.split('.')[0]);
}

/** `org/project/repo` → its parts; anything else → undefined. */
export function splitIdentifier(repositoryIdentifier: string): { org: string; project: string; repo: string } | undefined {
  const parts = repositoryIdentifier.split('/');
  return parts.length === 3 && parts.every(Boolean) ? { org: parts[0], project: parts[1], repo: parts[2] } : undefined;
}

export interface MappedFlow {
  flowType: string;
  /** Why: `type Bug` or `tag deploy`. */
  because: string;
}

/**
 * The flow types a project maps a work item to: by its type (only when it is created) and by
 * each of `tags` (tags present at creation, or added later). Type and tag names match
 * case-insensitively; each flow type appears once.
 */
export function mappedFlows(rules: WorkItemFlows | undefined, workItemType: string | null, tags: string[]): MappedFlow[] {
  if (!rules) return [];
  const out: MappedFlow[] = [];
  const add = (flowType: string | undefined, because: string) => {
    if (flowType && !out.some((m) => m.flowType === flowType)) out.push({ flowType, because });
  };
  const lookup = (table: Record<string, string> | undefined, key: string) =>
    table ? Object.entries(table).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1] : undefined;
  if (workItemType) add(lookup(rules.byType, workItemType), `work item type ${workItemType}`);
  for (const tag of tags) add(lookup(rules.byTag, tag), `tag ${tag}`);
  return out;
}

/** The object in the first ```json block of a (HTML or plain) text, if any. */
export function jsonBlock(text: unknown): Record<string, unknown> | undefined {
  if (typeof text !== 'string' || !text) return undefined;
  const plain = looksLikeHtml(text) ? htmlToText(text) : text;
  const m = /```json[ \t]*\n([\s\S]*?)\n?[ \t]*```/i.exec(plain);
  if (!m) return undefined;
  try {
    const parsed = JSON.parse(m[1]);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function asParamText(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return looksLikeHtml(value) ? htmlToText(value) : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const identity = identityOf(value);
  if (identity) return identity.uniqueName;
  return JSON.stringify(value);
}

/**
 * A flow's parameters from a work item's fields, for each declared parameter, first found wins:
 *  1. the key of that name in a ```json block of `System.Description`;
 *  2. the field `Custom.<name>`;
 *  3. any field whose reference name ends in `.<name>` (`System.Title` → `title`).
 * Names match case-insensitively. Values are text; the core coerces them to the parameter types.
 */
export function paramsFromWorkItem(def: FlowDefinition, fields: Record<string, unknown>): Record<string, string> {
  const json = jsonBlock(fields['System.Description']);
  const byName = new Map<string, unknown>();
  const custom = new Map<string, unknown>();
  for (const [ref, value] of Object.entries(fields)) {
    const last = ref.split('.').at(-1)!.toLowerCase();
    if (/^custom\./i.test(ref)) custom.set(last, value);
    else if (!byName.has(last)) byName.set(last, value);
  }
  const out: Record<string, string> = {};
  for (const p of def.parameters) {
    if (p.name === 'id' || p.name === 'repositoryIdentifier') continue;
    const key = p.name.toLowerCase();
    const fromJson = json ? Object.entries(json).find(([k]) => k.toLowerCase() === key) : undefined;
    const value = asParamText(fromJson ? fromJson[1] : custom.has(key) ? custom.get(key) : byName.get(key));
    if (value !== undefined) out[p.name] = value;
  }
  return out;
}
