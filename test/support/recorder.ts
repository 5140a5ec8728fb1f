import http from 'node:http';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: unknown;
  at: number;
}

export type Responder = (req: RecordedRequest) => { status?: number; body?: unknown; delayMs?: number } | undefined;

/**
 * A local HTTP server that records every request and answers with JSON: the target of
 * http.request steps and webhook callbacks in tests.
 */
export class Recorder {
  readonly requests: RecordedRequest[] = [];
  private responders: Responder[] = [];
  private server?: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = body ? JSON.parse(body) : undefined; } catch { json = undefined; }
        const rec: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json, at: Date.now() };
        this.requests.push(rec);
        const answer = this.responders.map((r) => r(rec)).find((a) => a !== undefined) ?? {};
        if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer.body ?? { ok: true, path: rec.path }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  /** Answers requests the responder returns a value for; earlier responders win. */
  respond(responder: Responder): void {
    this.responders.push(responder);
  }

  to(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async waitFor(predicate: (reqs: RecordedRequest[]) => boolean, timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate(this.requests)) {
      if (Date.now() > until) throw new Error(`recorder: condition not met within ${timeoutMs} ms; saw ${this.requests.map((r) => `${r.method} ${r.path}`).join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
