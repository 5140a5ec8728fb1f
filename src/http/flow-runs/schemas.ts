import { z } from 'zod';
import { isUuid } from '../../core/ids.js';
import { FLOW_TYPES } from '../../core/runs/flow-run-records.js';
import type { RunBound } from '../../core/runs/run-page-query.js';
import { repositoryIdentifier } from '../sfp/schemas.js';
import { PHASES } from './present.js';

// Messages are pydantic's (the API this one follows is a FastAPI service); the envelope adds `loc` and `type`.
const REQUIRED = 'Field required';
const PATTERN = '^([a-z0-9_.-]+)$';
const typed = (what: string) => ({ error: (i: { input?: unknown }) => (i.input === undefined ? REQUIRED : `Input should be a valid ${what}`) });
const oneOf = (values: readonly string[]) => ({
  error: (i: { input?: unknown }) => (i.input === undefined ? REQUIRED : `Input should be ${values.slice(0, -1).map((v) => `'${v}'`).join(', ')} or '${values.at(-1)}'`),
});

/** `id` and `flowId`: the contract's pattern, and a length a path segment keeps. */
export const flowRunName = z.string(typed('string'))
  .max(200, 'String should have at most 200 characters')
  .regex(new RegExp(PATTERN), `String should match pattern '${PATTERN}'`);

const when = z.iso.datetime({ offset: true, error: 'Input should be a valid datetime (ISO 8601 with a time zone)' }).transform((v) => new Date(v));
const object = z.record(z.string(), z.unknown(), typed('dictionary'));
const phase = z.enum(PHASES, oneOf(PHASES));
const flowType = z.enum(FLOW_TYPES, oneOf(FLOW_TYPES));

/** `[{key, value}]`, Flowgate's run tags (a map) on the wire: bounded as every API bounds them. */
const tags = z.array(z.object({
  key: z.string(typed('string')).min(1, 'String should have at least 1 character').max(64, 'String should have at most 64 characters'),
  value: z.string(typed('string')).max(256, 'String should have at most 256 characters'),
}), typed('list')).max(20, 'List should have at most 20 items').superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((t, i) => {
    if (seen.has(t.key)) ctx.addIssue({ code: 'custom', path: [i, 'key'], message: `Value error, tag ${t.key} is given twice` });
    seen.add(t.key);
  });
});

export const tagMap = (list: { key: string; value: string }[] | null | undefined): Record<string, string> =>
  Object.fromEntries((list ?? []).map((t) => [t.key, t.value]));

/** Another name for the project than the one a single-project token implies (extension: the contract has no project). */
const project = repositoryIdentifier.optional();

/** `args` hold the flow's parameters; `id` in them would name the flow type, which `flowId` does. */
const args = object.nullish().superRefine((a, ctx) => {
  if (a && 'id' in a) ctx.addIssue({ code: 'custom', path: ['id'], message: 'Value error, reserved: the flow is named by flowId' });
});

export const createBody = z.object({
  id: flowRunName.nullish(),
  flowId: flowRunName,
  flowType: flowType.default('selfServiceAction'),
  args,
  tags: tags.nullish(),
  project,
});

const action = z.object({
  id: z.string(typed('string')).min(1, 'String should have at least 1 character').max(200, 'String should have at most 200 characters'),
  phase: phase.nullish(),
  startTime: when.nullish(),
  endTime: when.nullish(),
});

const logLine = z.object({
  timestamp: when.nullish(),
  message: z.string(typed('string')).max(16_000, 'String should have at most 16000 characters'),
  level: z.enum(['debug', 'info', 'warn', 'error'], oneOf(['debug', 'info', 'warn', 'error'])).default('info'),
  action: z.string(typed('string')).min(1, 'String should have at least 1 character').max(200, 'String should have at most 200 characters').nullish(),
});

export const upsertBody = z.object({
  id: flowRunName.nullish(),
  flowId: flowRunName,
  flowType,
  args,
  phase: phase.nullish(),
  startTime: when.nullish(),
  endTime: when.nullish(),
  actions: z.array(action, typed('list')).max(500, 'List should have at most 500 items').nullish().superRefine((list, ctx) => {
    const seen = new Set<string>();
    (list ?? []).forEach((a, i) => {
      if (seen.has(a.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `Value error, action ${a.id} is given twice` });
      seen.add(a.id);
    });
  }),
  outputs: object.nullish(),
  logs: z.array(logLine, typed('list')).max(10_000, 'List should have at most 10000 items').nullish(),
  tags: tags.nullish(),
  project,
});
export type UpsertBody = z.infer<typeof upsertBody>;

/** GET reads any id (an unknown one is 404); PUT and DELETE name ids of the contract's pattern. */
export const readParams = z.object({ id_: z.string().min(1).max(200) });
export const writeParams = z.object({ id_: flowRunName });

/**
 * The opaque cursor: base64url of `<op>|<created_at with microseconds>|<run id>`, where the op
 * says which way the page runs from that run and whether it includes it (see `RunBound`).
 */
const OPS = { '>': ['forward', false], '>=': ['forward', true], '<': ['backward', false], '<=': ['backward', true] } as const;
type Op = keyof typeof OPS;

export const encodeCursor = (b: RunBound): string => {
  const op = (Object.keys(OPS) as Op[]).find((k) => OPS[k][0] === b.direction && OPS[k][1] === b.inclusive)!;
  return Buffer.from(`${op}|${b.position.createdAt}|${b.position.id}`).toString('base64url');
};

const cursor = z.string().max(300).transform((value, ctx): RunBound => {
  const [op, createdAt, id, ...rest] = Buffer.from(value, 'base64url').toString('utf8').split('|');
  const how = OPS[op as Op];
  if (!how || rest.length || !id || !isUuid(id) || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(createdAt ?? '') || Number.isNaN(Date.parse(createdAt))) {
    ctx.addIssue({ code: 'custom', message: 'Value error, not a cursor this API returned' });
    return z.NEVER;
  }
  return { position: { createdAt, id }, direction: how[0], inclusive: how[1] };
});

export const listQuery = z.object({
  cursor: cursor.optional(),
  size: z.coerce.number({ error: 'Input should be a valid integer, unable to parse string as an integer' })
    .int('Input should be a valid integer, got a number with a fractional part')
    .min(1, 'Input should be greater than or equal to 1').max(100, 'Input should be less than or equal to 100').default(50),
});

// Documentation of the answers (/openapi.json).
const at = z.string().nullable();
export const flowRunSchema = z.object({
  id: z.string(), flowId: z.string(), flowType: z.enum(FLOW_TYPES), args: z.record(z.string(), z.unknown()), phase: z.enum(PHASES).nullable(),
  startTime: at, endTime: at,
  actions: z.array(z.object({ id: z.string(), phase: z.enum(PHASES), startTime: at, endTime: at })),
  outputs: z.record(z.string(), z.unknown()),
  logs: z.array(z.object({ timestamp: z.string(), message: z.string(), level: z.string(), action: z.string().nullable() })),
  tags: z.array(z.object({ key: z.string(), value: z.string() })),
  createdAt: z.string(), createdBy: z.number().int().nullable(), updatedAt: z.string(), updatedBy: z.number().int().nullable(),
  reviewedBy: z.number().int().nullable(), reviewedAt: at, project: z.string(), runId: z.string(),
});

export const pageSchema = z.object({
  items: z.array(flowRunSchema), total: z.number().int(),
  current_page: z.string().nullable(), current_page_backwards: z.string().nullable(), previous_page: z.string().nullable(), next_page: z.string().nullable(),
});

export const errorSchema = z.object({ detail: z.array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() })) });
