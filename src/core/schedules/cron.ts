import { CronExpressionParser } from 'cron-parser';

const FIELDS = 'minute hour day-of-month month day-of-week';

/**
 * What is wrong with a cron expression, or undefined. Standard 5 fields; a leading sixth
 * field for seconds is accepted too (the engine's scheduler understands it).
 */
export function cronProblem(expression: string, timezone?: string | null): string | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6)
    return `expected 5 fields (${FIELDS}), or 6 with seconds first; got ${fields.length}`;
  try {
    CronExpressionParser.parse(expression, { tz: timezone ?? 'UTC', strict: false });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export function timezoneProblem(timezone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return undefined;
  } catch {
    return `unknown time zone "${timezone}" (use an IANA name such as Europe/Paris)`;
  }
}

/** The next time the expression fires after `from`. */
export function nextFire(expression: string, timezone: string | null | undefined, from = new Date()): Date | null {
  try {
    return CronExpressionParser.parse(expression, { tz: timezone ?? 'UTC', currentDate: from }).next().toDate();
  } catch {
    return null;
  }
}
