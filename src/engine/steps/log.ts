import type { StepKind } from './step-kind.js';
import { resolveInput, stepLog } from './step-kind.js';

export const logStep: StepKind = async (x) => {
  const input = await resolveInput(x, 'log');
  await stepLog(x, input.level, input.message, 'message');
  return { message: input.message, level: input.level };
};
