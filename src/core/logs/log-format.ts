/** Formatting shared by the archive and the CLI; pure, so the CLI can use it without the database code. */

export interface FormattableLine {
  timestamp: string;
  level: string;
  source: string;
  group: string;
  message: string;
}

/** `<ISO time> <LEVEL> [<source>/<group>] <message>` (no newline). */
export const formatLogLine = (l: FormattableLine) => `${l.timestamp} ${l.level.toUpperCase()} [${l.source}/${l.group}] ${l.message}`;

/** One path segment of an archive entry: `step:grant` → `step-grant`; never empty, `.` or `..`. */
export function safeSegment(name: string): string {
  const s = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^\.+$/, '_');
  return s || '_';
}
