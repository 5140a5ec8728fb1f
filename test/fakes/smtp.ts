import { SMTPServer } from 'smtp-server';

/** A message as the fake received it: the envelope, who logged in, and the message itself. */
export interface ReceivedMail {
  mailFrom: string;
  rcptTo: string[];
  /** The user name AUTH logged in with (undefined: no AUTH). */
  user?: string;
  raw: string;
  /** Header fields, names in lower case, folded lines joined. */
  headers: Record<string, string>;
  at: number;
}

/**
 * A stand-in mail server in tests: plain SMTP (no TLS) on loopback, AUTH required when a user and
 * password are given, every accepted message recorded, and the next ones refused on demand.
 */
export class FakeSmtp {
  readonly received: ReceivedMail[] = [];
  /** How many messages reached DATA, refused ones included (a retried send shows here). */
  attempts = 0;
  port = 0;
  private server?: SMTPServer;
  private refusals: { code: number; text: string }[] = [];

  constructor(private readonly login?: { user: string; pass: string }) {}

  async start(): Promise<this> {
    this.server = new SMTPServer({
      logger: false,
      disabledCommands: ['STARTTLS', ...(this.login ? [] : ['AUTH'])],
      authOptional: !this.login,
      // No TLS on loopback: the password crosses in the clear, which is what lets the fake check it.
      allowInsecureAuth: true,
      onAuth: (auth, _session, done) => {
        if (this.login && auth.username === this.login.user && auth.password === this.login.pass) return done(null, { user: auth.username });
        // Echoes the login it refused, as a careless server might: what Flowgate shows must hide it.
        done(Object.assign(new Error(`Invalid username or password ${auth.username}:${auth.password}`), { responseCode: 535 }));
      },
      onData: (stream, session, done) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.attempts++;
          const refusal = this.refusals.shift();
          if (refusal) return done(Object.assign(new Error(refusal.text), { responseCode: refusal.code }));
          const raw = Buffer.concat(chunks).toString('utf8');
          const envelope = session.envelope;
          this.received.push({
            mailFrom: envelope.mailFrom ? envelope.mailFrom.address : '', rcptTo: envelope.rcptTo.map((r) => r.address),
            user: session.user as string | undefined, raw, headers: headersOf(raw), at: Date.now(),
          });
          done();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.server.address() as { port: number }).port;
    return this;
  }

  /** The FLOWGATE_SMTP_URL that reaches this server (with the login, if it has one). */
  get url(): string {
    const login = this.login ? `${encodeURIComponent(this.login.user)}:${encodeURIComponent(this.login.pass)}@` : '';
    return `smtp://${login}127.0.0.1:${this.port}`;
  }

  /** Refuses the next message (at the end of DATA) with this reply code, e.g. 550 or 451. */
  refuseNext(code: number, text = code >= 500 ? 'Message rejected' : 'Try again later'): this {
    this.refusals.push({ code, text });
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The header block of a message, unfolded: enough to check subject, to, cc and from. */
function headersOf(raw: string): Record<string, string> {
  const block = raw.split(/\r?\n\r?\n/, 1)[0].replace(/\r?\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of block.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}
