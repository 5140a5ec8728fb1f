import type { StepKind } from './step-kind.js';
import { resolveInput } from './step-kind.js';

export const logStep: StepKind = async (x) => {
  const input = await resolveInput(x, 'log');
  x.note(input.level, input.message);
  return { message: input.message, level: input.level };
};
