import { z } from 'zod';
import { stepInputs } from '../core/registry/step-inputs.js';
import { httpRequest as run } from '../executor/kinds.js';
import { plugin } from './plugin.js';

export const httpRequest = plugin({
  id: 'http.request', name: 'HTTP request', category: 'protocol',
  description: 'Sends an HTTP request (retried per the step\'s retry); a non-2xx answer fails the step. Destinations obey FLOWGATE_OUTBOUND_ALLOW.',
  input: stepInputs['http.request'],
  output: z.object({ status: z.number(), headers: z.record(z.string(), z.string()), body: z.unknown() }),
  credentials: true,
  effectful: true,
  run,
});
