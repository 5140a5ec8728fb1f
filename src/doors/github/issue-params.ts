/**
 * The parameters of an issue-driven run: the first fenced ```json block of the issue body, an
 * object. Values become `key=value` strings for the shared parameter coercion (lists and objects
 * as JSON, which it reads back); null means "not given". Pure: problems come back as text.
 */
export function paramsFromIssueBody(body: string): { params: Record<string, string> } | { problem: string } {
  const m = /^[ \t]*(`{3,}|~{3,})[ \t]*json[ \t]*\r?\n([\s\S]*?)^[ \t]*\1[ \t]*$/im.exec(body ?? '');
  if (!m) return { problem: 'The issue body has no ```json block with the flow\'s parameters.' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(m[2]);
  } catch (err) {
    return { problem: `The \`\`\`json block is not valid JSON: ${(err as Error).message}.` };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { problem: 'The ```json block must hold an object of parameters, such as `{"username": "dev"}`.' };
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (value === null || value === undefined) continue;
    params[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return { params };
}
