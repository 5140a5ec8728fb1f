import { step } from '../inbound.js';
import { PIPELINE_PARAMETERS } from '../../core/cicd/azure-pipelines-dispatcher.js';
import type { StatusReport } from '../../core/cicd/cicd-store.js';
import { Run } from '../../db/entities/run.js';
import { act } from './act.js';
import { d, READ } from './context.js';
import type { HookEvent } from './hooks.js';

// Azure Pipelines: a run-state-changed event moves the cicd run like a status report would.

const REPORT_OF: Record<string, StatusReport['status']> = { succeeded: 'completed', failed: 'failed', canceled: 'cancelled' };

export async function onPipelineRun(ev: Extract<HookEvent, { kind: 'pipeline-run' }>, deliveryId: string): Promise<void> {
  const found = await step('read', async () => {
    const { client, s } = d();
    const pipelineRun = await client.pipelineRun(ev.project, ev.pipelineId, ev.runId);
    if (!pipelineRun) return null;
    const executionId = pipelineRun.templateParameters[PIPELINE_PARAMETERS.executionId];
    let run = executionId && /^[0-9a-f-]{36}$/i.test(executionId) ? await s.store.findById(executionId, true) : null;
    if (!run) {
      const byPipeline = await s.orm.em.fork().findOne(Run, { cicdRunId: String(pipelineRun.id), executionMode: 'cicd' }, { orderBy: { createdAt: 'desc' } });
      run = byPipeline ? await s.store.findById(byPipeline.id, true) : null;
    }
    // Only a run of an azure-pipelines flow type that this pipeline run belongs to.
    if (!run || run.executionMode !== 'cicd' || run.definition?.cicd?.provider !== 'azure-pipelines') return null;
    if (run.cicdRunId && run.cicdRunId !== String(pipelineRun.id)) return null;
    if (String(run.definition.cicd.pipeline) !== String(pipelineRun.pipelineId ?? ev.pipelineId)) return null;
    const status = pipelineRun.state === 'inProgress' ? 'running' : pipelineRun.state === 'completed' ? REPORT_OF[pipelineRun.result ?? ''] : undefined;
    if (!status || (status === 'running' && run.status !== 'queued')) return null;
    return { runId: run.id, report: { status, cicdRunId: String(pipelineRun.id), ...(pipelineRun.url ? { cicdRunUrl: pipelineRun.url } : {}) } as StatusReport };
  }, READ);
  if (!found) return;
  const outcome = await act(`report:${found.runId}:${ev.runId}:${found.report.status}`, { kind: 'report', runId: found.runId, report: found.report });
  if (!outcome.ok) d().s.log.info({ runId: found.runId, deliveryId, reason: outcome.text }, 'Azure Pipelines run state not applied');
}