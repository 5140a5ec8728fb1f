import { acmePeople, startTestServer, type TestServer } from './server.js';

/** A browser-like client of the console over plain HTTP: a cookie jar, CSRF tokens read from the pages. */
export class ConsoleClient {
  private readonly cookies = new Map<string, string>();

  constructor(readonly base: string) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && new Date(a.split('=')[1]).getTime() < Date.now());
      if (expired || !value) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; html: string; headers: Headers }> {
    const res = await fetch(this.base + path, { headers: { cookie: this.cookieHeader(), ...headers }, redirect: 'manual' });
    this.keep(res);
    return { status: res.status, html: await res.text(), headers: res.headers };
  }

  /** Posts a form as a browser would; `_csrf` is added from the last page unless given (pass `_csrf: ''` to leave it out). */
  async post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; html: string; headers: Headers }> {
    const body = new URLSearchParams({ ...(this.csrf !== undefined ? { _csrf: this.csrf } : {}), ...fields });
    if (body.get('_csrf') === '') body.delete('_csrf');
    const res = await fetch(this.base + path, {
      method: 'POST', redirect: 'manual', body: body.toString(),
      headers: { cookie: this.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded', origin: new URL(this.base).origin, ...headers },
    });
    this.keep(res);
    const html = await res.text();
    return { status: res.status, html, headers: res.headers };
  }

  /** The CSRF token of the signed-in session or the sign-in form, as the last page carried it. */
  csrf?: string;

  /** Reads the CSRF token a page carries (hidden `_csrf` field). */
  remember(html: string): void {
    const m = /name="_csrf" value="([^"]+)"/.exec(html);
    if (m) this.csrf = m[1];
  }

  async page(path: string): Promise<{ status: number; html: string; headers: Headers }> {
    const r = await this.get(path);
    this.remember(r.html);
    return r;
  }

  async signInWithToken(token: string): Promise<void> {
    await this.page('/console/login');
    const r = await this.post('/console/login/token', { token });
    if (r.status !== 303) throw new Error(`signing in with a token answered ${r.status}: ${r.html.slice(0, 300)}`);
    await this.page('/console');
  }
}

/** A client signed in with an API token (through the sign-in form, as a person would). */
export async function signedIn(base: string, token: string): Promise<ConsoleClient> {
  const c = new ConsoleClient(base);
  await c.signInWithToken(token);
  return c;
}

/** The text of an HTML fragment without tags, whitespace collapsed (for readable assertions). */
export const textOf = (html: string) => html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<[^>]+>/g, ' ').replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/\s+/g, ' ').trim();

/** The acme people's tokens (`acmePeople`). */
export type AcmePeople = Awaited<ReturnType<typeof acmePeople>>;

/**
 * A test file's server with the acme people, started before its tests (then `setup`) and stopped
 * after them; read `server` and `people` inside tests, once `beforeAll` has run.
 */
export function consoleServer(setup?: (server: TestServer) => Promise<void>): { server: TestServer; people: AcmePeople; signedIn(token: string): Promise<ConsoleClient> } {
  const fx = { signedIn: (token: string) => signedIn(fx.server.url, token) } as ReturnType<typeof consoleServer>;
  beforeAll(async () => {
    fx.server = await startTestServer();
    fx.people = await acmePeople(fx.server);
    await setup?.(fx.server);
  });
  afterAll(async () => {
    await fx.server?.stop();
  });
  return fx;
}
