import { EntitySchema } from '@mikro-orm/core';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One line of a run's log; `seq` is dense and ordered per run, so readers can stream by offset. */
export class LogLine {
  runId!: string;
  seq!: number;
  at!: Date;
  level!: LogLevel;
  /** What wrote the line: `engine`, or `step:<ref>`. */
  source!: string;
  /** A grouping inside the source, e.g. the step kind or `http`. */
  group!: string;
  message!: string;
}

export const LogLineSchema = new EntitySchema<LogLine>({
  class: LogLine,
  tableName: 'log_lines',
  properties: {
    runId: { type: 'uuid', primary: true },
    seq: { type: 'integer', primary: true },
    at: { type: 'datetime' },
    level: { type: 'text' },
    source: { type: 'text' },
    group: { type: 'text', fieldName: 'log_group' },
    message: { type: 'text' },
  },
});
