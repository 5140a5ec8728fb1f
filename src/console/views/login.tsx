import { Page, Problem } from './layout.js';

export interface LoginProps {
  csrf: string;
  next: string;
  passwords: boolean;
  slack: boolean;
  problem?: string;
}

export function LoginPage({ csrf, next, passwords, slack, problem }: LoginProps) {
  return (
    <Page title="Sign in">
      {problem && <Problem message={problem} />}
      <div class="cards">
        {passwords && (
          <section class="card" aria-labelledby="by-password">
            <h2 id="by-password">With your account</h2>
            <form method="post" action="/console/login/password">
              <input type="hidden" name="_csrf" value={csrf} />
              <input type="hidden" name="next" value={next} />
              <label for="username">Username</label>
              <input id="username" name="username" autocomplete="username" required />
              <label for="password">Password</label>
              <input id="password" name="password" type="password" autocomplete="current-password" required />
              <button type="submit">Sign in</button>
            </form>
          </section>
        )}
        <section class="card" aria-labelledby="by-token">
          <h2 id="by-token">With an API token</h2>
          <form method="post" action="/console/login/token">
            <input type="hidden" name="_csrf" value={csrf} />
            <input type="hidden" name="next" value={next} />
            <label for="token">Token</label>
            <input id="token" name="token" type="password" autocomplete="off" required aria-describedby="token-help" />
            <p id="token-help" class="help">The token is checked once and never kept in the browser. A token without an email may look, not decide.</p>
            <button type="submit">Sign in</button>
          </form>
        </section>
        {slack && (
          <section class="card" aria-labelledby="by-slack">
            <h2 id="by-slack">From Slack</h2>
            <p>Type <code>/flowgate login</code> in Slack: the bot sends you a one-time link (valid for 10 minutes).</p>
          </section>
        )}
      </div>
    </Page>
  );
}

export function ConfirmLinkPage({ csrf, secret, email, next }: { csrf: string; secret: string; email: string; next: string }) {
  return (
    <Page title="Continue to Flowgate">
      <form method="post" action="/console/login/link" class="card">
        <p>This one-time link signs you in as <strong>{email}</strong>.</p>
        <input type="hidden" name="_csrf" value={csrf} />
        <input type="hidden" name="link" value={secret} />
        <input type="hidden" name="next" value={next} />
        <button type="submit">Continue as {email}</button>
      </form>
    </Page>
  );
}
