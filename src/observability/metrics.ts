import client from 'prom-client';

/** Prometheus metrics of one process, in their own registry (tests create many apps). */
export class Metrics {
  readonly registry = new client.Registry();
  readonly httpDuration = new client.Histogram({
    name: 'flowgate_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly runsStarted = new client.Counter({
    name: 'flowgate_runs_started_total', help: 'Runs started, by flow type', labelNames: ['task_type'] as const, registers: [this.registry],
  });
  readonly runsFinished = new client.Counter({
    name: 'flowgate_runs_finished_total', help: 'Runs finished, by final status', labelNames: ['status'] as const, registers: [this.registry],
  });
  /** Counted instead of audited: anyone can send them, so a row each would let strangers fill the database. */
  readonly unauthenticated = new client.Counter({
    name: 'flowgate_unauthenticated_requests_total',
    help: 'Requests refused for lack of valid credentials (no or a bad token, a bad webhook signature), by surface',
    labelNames: ['surface'] as const, registers: [this.registry],
  });

  /** Webhook trigger requests by outcome; unknown keys are counted here, never audited (the label never holds a key). */
  readonly webhookRequests = new client.Counter({
    name: 'flowgate_webhook_requests_total',
    help: 'Requests to POST /api/v1/webhook/{key}, by result (accepted, repeated, not_found, bad_signature, rate_limited, too_large, refused, failed)',
    labelNames: ['result'] as const, registers: [this.registry],
  });

  /** Credentials steps resolved, by where each came from (env, global, namespace); never by name. */
  readonly credentialResolutions = new client.Counter({
    name: 'flowgate_credential_resolutions_total',
    help: 'Credentials resolved for running steps, by source (env, global, namespace)',
    labelNames: ['source'] as const, registers: [this.registry],
  });

  /** Logins by result (success, failure, throttled): failures are counted, never audited; no label names a user. */
  readonly logins = new client.Counter({
    name: 'flowgate_logins_total', help: 'POST /auth/login by result (success, failure, throttled)', labelNames: ['result'] as const, registers: [this.registry],
  });

  readonly logStreams = new client.Gauge({
    name: 'flowgate_log_streams', help: 'Execution log streams (WebSocket) open on this process', registers: [this.registry],
  });

  constructor(queueDepth: () => Promise<number>, launchBacklog: () => number) {
    new client.Gauge({
      name: 'flowgate_runs_awaiting_launch',
      help: 'Runs accepted by this process and waiting for a slot (FLOWGATE_ACTIVE_RUNS)',
      registers: [this.registry],
      collect() {
        this.set(launchBacklog());
      },
    });
    new client.Gauge({
      name: 'flowgate_engine_queue_depth',
      help: 'Engine workflows pending or enqueued',
      registers: [this.registry],
      async collect() {
        this.set(await queueDepth().catch(() => 0));
      },
    });
    client.collectDefaultMetrics({ register: this.registry, prefix: 'flowgate_' });
  }
}
