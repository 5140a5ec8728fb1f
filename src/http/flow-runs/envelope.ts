import type { AppError, FieldProblem } from '../../errors.js';

type Loc = (string | number)[];
interface ZodIssueLike { code: string; path: PropertyKey[]; message: string; expected?: string; origin?: string; format?: string }

/** The core's field names (the sfp payload's) in this API's body. */
function bodyPath(field: string): Loc {
  const parts: Loc = field.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (field === 'payload.id') return ['flowId'];
  if (field === 'payload.repositoryIdentifier' || field === 'repositoryIdentifier') return ['project'];
  if (parts[0] === 'payload') return ['args', ...parts.slice(1)];
  return parts;
}

function locOf(d: FieldProblem): Loc {
  const where = d.location ?? 'body';
  if (/^\(\w+\)$/.test(d.field)) return [where];
  return [where, ...(where === 'body' ? bodyPath(d.field) : [d.field])];
}

/** Pydantic's error types for zod's issues (what FastAPI clients switch on). */
function typeOf(i: ZodIssueLike, where: string): string {
  // An absent field fails on whatever checks it first (its type, its enum): the schemas say so in its message.
  if (i.message === 'Field required') return 'missing';
  switch (i.code) {
    case 'invalid_type':
      return ({ string: 'string_type', number: where === 'body' ? 'int_type' : 'int_parsing', boolean: 'bool_type', record: 'dict_type', object: 'dict_type', array: 'list_type' } as Record<string, string>)[i.expected ?? ''] ?? 'value_error';
    case 'too_small': return i.origin === 'string' ? 'string_too_short' : i.origin === 'array' ? 'too_short' : 'greater_than_equal';
    case 'too_big': return i.origin === 'string' ? 'string_too_long' : i.origin === 'array' ? 'too_long' : 'less_than_equal';
    case 'invalid_format': return i.format === 'regex' ? 'string_pattern_mismatch' : i.format === 'datetime' ? 'datetime_from_date_parsing' : 'value_error';
    case 'invalid_value': return 'enum';
    default: return 'value_error';
  }
}

/**
 * FastAPI's error bodies: `{"detail": [{loc, msg, type}]}` for a request it cannot take (the zod
 * issues of the edge validation, or the field problems the core names), `{"detail": "<sentence>"}`
 * for everything else.
 */
export function flowRunsEnvelope(err: AppError) {
  if (flowRunsStatus(err) !== 422) return { detail: err.message };
  const where = err.details[0].location ?? 'body';
  const issues = (err.cause as { issues?: ZodIssueLike[] } | undefined)?.issues;
  if (err.code === 'validation_failed' && issues?.length)
    return { detail: issues.map((i) => ({ loc: [where, ...i.path.map((p) => (typeof p === 'number' ? p : String(p)))], msg: i.message, type: typeOf(i, where) })) };
  return {
    detail: err.details.map((d) => ({
      loc: locOf(d),
      msg: d.field === '(body)' && d.message === 'not valid JSON' ? 'JSON decode error' : d.message,
      type: d.field === '(body)' && d.message === 'not valid JSON' ? 'json_invalid' : d.message.startsWith('Field required') ? 'missing' : 'value_error',
    })),
  };
}

/** A request naming what is wrong with its fields is 422 (FastAPI's validation status); every other code keeps its common status. */
export const flowRunsStatus = (err: AppError): number =>
  err.code === 'validation_failed' || (err.code === 'bad_request' && err.details.length) ? 422 : err.status;
