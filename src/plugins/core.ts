import { z } from 'zod';
import { stepInputs } from '../core/registry/step-inputs.js';
import { log, notify, sleepKind } from '../executor/kinds.js';
import { plugin } from './plugin.js';

export const utilLog = plugin({
  id: 'util.log', engineName: 'log', aliases: ['log'], name: 'Log', category: 'core',
  description: 'Writes a line to the run log.',
  input: stepInputs.log,
  output: z.object({ message: z.string(), level: z.enum(['debug', 'info', 'warn', 'error']) }),
  run: log,
});

export const utilSleep = plugin({
  id: 'util.sleep', engineName: 'sleep', aliases: ['sleep'], name: 'Sleep', category: 'core',
  description: 'Waits for a number of seconds or minutes, or until a time; durable (the run is released meanwhile and a restart keeps the wake-up time).',
  input: stepInputs.sleep,
  output: z.object({ sleptMs: z.number(), until: z.string() }),
  run: sleepKind,
});

export const notifyThread = plugin({
  id: 'notify.thread', engineName: 'notify', aliases: ['notify'], name: 'Notify the thread', category: 'core',
  description: 'Posts a message to the thread the run was started from (Slack thread, GitHub issue or pull request, Azure DevOps work item, or webhook).',
  input: stepInputs.notify,
  output: z.object({ delivered: z.boolean(), message: z.string(), reason: z.string().optional() }),
  effectful: true,
  run: notify,
});
