import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { CicdService } from '../cicd/cicd-service.js';
import type { CredentialService } from '../credentials/credential-service.js';
import type { KvStore } from '../kv/kv-store.js';
import { FlowLocks } from '../locks/flow-locks.js';
import type { TriggerService } from '../triggers/trigger-service.js';
import { Retention } from './retention.js';
import type { SweepTask } from './sweeper.js';

/** Prunes what is older than the retention (FLOWGATE_RETENTION_DAYS, FLOWGATE_AUDIT_RETENTION_DAYS). */
export const retentionSweep = (retention: Retention, log: Logger): SweepTask => ({
  name: 'retention',
  async run() {
    const counts = await retention.prune();
    if (Object.values(counts).some((n) => n > 0)) log.info(counts, 'pruned what is older than the retention');
  },
});

/** Settles held CI/CD reports whose pipeline runs concluded (GitHub Actions). */
export const heldReportsSweep = (cicd: CicdService): SweepTask => ({
  name: 'held-cicd-reports',
  async run() {
    await cicd.settleAllHeld();
  },
});

/** Processes again door deliveries a crash left `processing` (doors/inbound.ts). */
export const stalledDeliveriesSweep = (retake: () => Promise<number>): SweepTask => ({
  name: 'stalled-deliveries',
  async run() {
    await retake();
  },
});

/** Removes expired key-value entries (reads already treat them as absent). */
export const kvExpirySweep = (kv: KvStore): SweepTask => ({
  name: 'kv-expiry',
  async run() {
    await kv.prune();
  },
});

/** Forgets webhook delivery keys past their 24 h and rate windows past their minute. */
export const webhookBookkeepingSweep = (triggers: Pick<TriggerService, 'prune'>): SweepTask => ({
  name: 'webhook-bookkeeping',
  async run() {
    await triggers.prune();
  },
});

/** Deletes project locks whose run has ended without its executor's end releasing them (a cancel). */
export const flowLocksSweep = (locks: FlowLocks): SweepTask => ({
  name: 'flow-locks',
  async run() {
    await locks.releaseEnded();
  },
});

/**
 * Seals credentials stored under a previous key (FLOWGATE_ENCRYPTION_KEYS_PREVIOUS) anew with the
 * current one; rows under keys not configured are named by key id once, not every sweep.
 */
export const credentialKeySweep = (credentials: Pick<CredentialService, 'reencrypt'>, log: Logger): SweepTask => {
  let reported = '';
  return {
    name: 'credential-keys',
    async run() {
      const r = await credentials.reencrypt();
      if (!r) return;
      if (r.reencrypted) log.info({ reencrypted: r.reencrypted }, 'credentials re-encrypted under the current FLOWGATE_ENCRYPTION_KEY');
      const absent = JSON.stringify(r.absentKeys);
      if (absent !== reported && (Object.keys(r.absentKeys).length || r.unreadable)) {
        log.warn({ absentKeys: r.absentKeys, unreadable: r.unreadable }, 'credentials under keys not configured (they fail when used): add the key to FLOWGATE_ENCRYPTION_KEYS_PREVIOUS, or store them anew');
      }
      reported = absent;
    },
  };
};

/** The sweep's housekeeping: held CI/CD reports, stalled deliveries, retention, expired keys, webhook bookkeeping, ended runs' locks. */
export function maintenanceTasks(
  s: { orm: MikroORM; cicd: CicdService; log: Logger; kv: KvStore; credentials: Pick<CredentialService, 'reencrypt'>; triggers: Pick<TriggerService, 'prune'>; config: Pick<Config, 'retentionDays' | 'auditRetentionDays'> },
  retakeDeliveries: () => Promise<number>,
  forgetWorkflows: (engineRunIds: string[]) => Promise<void>,
): SweepTask[] {
  const retention = new Retention(s.orm, { retentionDays: s.config.retentionDays, auditRetentionDays: s.config.auditRetentionDays, forgetWorkflows });
  return [heldReportsSweep(s.cicd), stalledDeliveriesSweep(retakeDeliveries), retentionSweep(retention, s.log), kvExpirySweep(s.kv), webhookBookkeepingSweep(s.triggers), flowLocksSweep(new FlowLocks(s.orm)), credentialKeySweep(s.credentials, s.log)];
}
