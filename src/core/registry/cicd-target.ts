import { z } from 'zod';

/**
 * Where a pipeline runs: a cicd-mode manifest's `cicd:` block, or a `cicd.run` step's properties.
 * A module of its own: the plugin catalogue reads it, and the manifest schema reads the catalogue.
 */
export const cicdTargetSchema = z.strictObject({
  provider: z.enum(['webhook', 'github-actions', 'azure-pipelines']),
  workflow: z.string().optional(),
  pipeline: z.union([z.string(), z.number()]).optional(),
  url: z.string().optional(),
  ref: z.string().optional(),
});
