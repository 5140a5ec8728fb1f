import { z } from 'zod';
import { StepFailure } from '../engine/step-failure.js';
import { inputOf, plugin } from './plugin.js';

const input = z.strictObject({ message: z.string().min(1) });

export const flowFail = plugin({
  id: 'flow.fail', name: 'Fail', category: 'flow',
  description: 'Fails the step with a message (with `if`, a guard that stops the run when a condition holds); its onFailure decides what follows.',
  input, output: z.never(),
  run: async (c) => {
    throw new StepFailure(inputOf(c, input).message, false);
  },
});
