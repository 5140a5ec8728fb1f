/** Replaces credential values in text that leaves the step (logs, errors, outputs, dispatch errors). */
export function redact(text: string, credentials: Record<string, string>): string {
  let out = text;
  for (const v of Object.values(credentials)) if (v.length >= 4) out = out.split(v).join('***');
  return out;
}
