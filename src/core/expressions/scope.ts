/** What a run's expressions read, before the document spellings are added. */
export interface RunScope {
  payload: Record<string, unknown>;
  steps: Record<string, { status: string; output: unknown }>;
  run: Record<string, unknown>;
  project: Record<string, unknown>;
  credentials: Record<string, string>;
  /** What started the run (`trigger.type`, `trigger.body`…); empty when nothing recorded it. */
  trigger?: Record<string, unknown> | null;
}

/**
 * The names expressions see: the manifest spellings (`payload`, `steps.<ref>.output`, `run`) and the
 * flow documents' (`inputs`, `outputs.<task>`, `execution`) for the same values, so either form of a
 * flow reads either way.
 */
export function expressionScope(s: RunScope): Record<string, unknown> {
  return {
    ...s,
    trigger: s.trigger ?? {},
    inputs: s.payload,
    outputs: Object.fromEntries(Object.entries(s.steps).map(([ref, x]) => [ref, x.output])),
    execution: s.run,
  };
}
