import { durableStep } from '../durable-step.js';
import { callHttp, type HttpCallResult } from '../../core/net/http-call.js';
import { CredentialUnavailable } from '../../core/credentials/keyring.js';
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
  const result = await durableStep(async (): Promise<HttpCallResult> => {
    let credentials = x.deps.credentials;
    try {
      if (x.deps.stepCredentials) credentials = await x.deps.stepCredentials(x.run.repositoryIdentifier, x.step.with);
    } catch (err) {
      // A stored credential that cannot be decrypted fails the step for good, with the reason.
      if (err instanceof CredentialUnavailable) return { ok: false, line: err.message, retryable: false };
      throw err;
    }
    return callHttp(x.step, { context: await expressionContext(x.deps, x.run), credentials, fetch: x.deps.outboundFetch, timeLeftMs: left });
  }, { name: `${x.step.ref}.request#${x.attempt}` });
  x.note(result.ok ? 'info' : 'error', result.line);
  if (!result.ok) throw new StepFailure('output' in result ? `HTTP ${result.status}: ${result.line}` : result.line, result.retryable);
  return result.output;
};
