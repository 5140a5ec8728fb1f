import { durableStep } from '../durable-step.js';
import { callHttp } from '../../core/net/http-call.js';
import { expressionContext } from '../context.js';
import { StepFailure } from '../step-failure.js';
import type { StepKind } from './step-kind.js';
import { remainingMs } from './step-kind.js';

/**
 * Calls an HTTP endpoint (`core/net/http-call.ts`). The request runs inside the checkpointed step,
 * so values from `credentials` are used for the request only and are redacted from what is kept;
 * a flow or payload never reaches a private or metadata address the operator did not allow.
 */
export const httpRequestStep: StepKind = async (x) => {
  const left = await remainingMs(x);
  const result = await durableStep(async () => callHttp(x.step, {
    context: await expressionContext(x.deps, x.run), credentials: x.deps.credentials, fetch: x.deps.outboundFetch, timeLeftMs: left,
  }), { name: `${x.step.ref}.request#${x.attempt}` });
  x.note(result.ok ? 'info' : 'error', result.line);
  if (!result.ok) throw new StepFailure('output' in result ? `HTTP ${result.status}: ${result.line}` : result.line, result.retryable);
  return result.output;
};
