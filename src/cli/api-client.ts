/**
 * The CLI's HTTP client for the server's API: FLOWGATE_URL (default http://127.0.0.1:8080) and the
 * token in FLOWGATE_TOKEN. Imports nothing of the database or server.
 */

export interface CliIo {
  env: NodeJS.ProcessEnv;
  out(text: string): void;
  err(text: string): void;
}

/** A command could not do its work: the message is printed as `flowgate: …`, with this exit code. */
export class CliFailure extends Error {
  constructor(message: string, readonly exitCode: 1 | 2 = 1) {
    super(message);
    this.name = 'CliFailure';
  }
}

export class ApiClient {
  private constructor(private readonly base: URL, private readonly token: string) {}

  /** From FLOWGATE_URL and FLOWGATE_TOKEN; a missing token or a bad URL is misuse (exit code 2). */
  static fromEnv(env: NodeJS.ProcessEnv, command: string): ApiClient {
    const token = env.FLOWGATE_TOKEN?.trim();
    if (!token) throw new CliFailure(`FLOWGATE_TOKEN is not set: the ${command} command needs an API token (see \`flowgate token create\`)`, 2);
    let base: URL;
    try {
      base = new URL(env.FLOWGATE_URL?.trim() || 'http://127.0.0.1:8080');
      if (!/^https?:$/.test(base.protocol)) throw new Error('not http');
    } catch {
      throw new CliFailure(`FLOWGATE_URL "${env.FLOWGATE_URL}" is not an http(s) URL`, 2);
    }
    return new ApiClient(base, token);
  }

  get origin(): string {
    return this.base.origin;
  }

  /** A JSON request; a refusal becomes a CliFailure with the status and the server's own message. */
  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(`${this.base.pathname.replace(/\/$/, '')}${path}`, this.base);
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliFailure(`cannot reach Flowgate at ${this.base.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is it running? FLOWGATE_URL sets where)`);
    }
    const parsed = await res.json().catch(() => undefined);
    if (!res.ok) throw new CliFailure(`${res.status} ${errorText(parsed) ?? res.statusText}`);
    return parsed as T;
  }
}

/**
 * The message of either dialect's error body: sfp `{statusCode, message (text or list), summary?}`,
 * api `{error, details?: [{field, message}]}`.
 */
function errorText(body: any): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  if (body.message !== undefined) {
    const list = Array.isArray(body.message) ? body.message.join('; ') : String(body.message);
    return body.summary && Array.isArray(body.message) ? `${body.summary}: ${list}` : list;
  }
  if (typeof body.error === 'string') {
    const details = Array.isArray(body.details) ? body.details.map((d: { field: string; message: string }) => `${d.field}: ${d.message}`).join('; ') : '';
    return details ? `${body.error}: ${details}` : body.error;
  }
  return undefined;
}
