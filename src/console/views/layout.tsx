import type { ComponentChildren } from 'preact';
import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import { assetUrl } from '../assets.js';
import { INBOX_PAGE } from '../approval-cards.js';

/** htmx without eval, injected styles or script tags: what the console's CSP allows. */
const HTMX_CONFIG = JSON.stringify({ allowEval: false, includeIndicatorStyles: false, allowScriptTags: false, historyCacheSize: 0 });

export type Section = 'inbox' | 'runs' | 'flows' | 'none';

export interface PageProps {
  title: string;
  viewer?: ConsoleIdentity;
  section?: Section;
  /** Pending approvals the viewer may decide (the nav's badge). */
  waiting?: number;
  children: ComponentChildren;
}

const NAV: Array<{ section: Section; href: string; label: string }> = [
  { section: 'inbox', href: '/console', label: 'Inbox' },
  { section: 'runs', href: '/console/runs', label: 'Runs' },
  { section: 'flows', href: '/console/flows', label: 'Flows' },
];

/** The count `waitingCount` gives, which stops one past a page: "200+". */
const badge = (n: number) => (n > INBOX_PAGE ? `${INBOX_PAGE}+` : String(n));

export function Page({ title, viewer, section = 'none', waiting, children }: PageProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content={HTMX_CONFIG} />
        <title>{`${title} · Flowgate`}</title>
        <link rel="stylesheet" href={assetUrl('console.css')} />
        <script src={assetUrl('htmx.min.js')} defer />
        <script type="module" src={assetUrl('console.js')} />
      </head>
      <body hx-headers={viewer ? JSON.stringify({ 'X-CSRF-Token': viewer.csrf }) : undefined}>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="/console">Flowgate</a>
          {viewer && (
            <nav aria-label="Console">
              <ul>
                {NAV.map((n) => (
                  <li>
                    <a href={n.href} aria-current={n.section === section ? 'page' : undefined}>
                      {n.label}
                      {n.section === 'inbox' && waiting ? <span class="badge" aria-label={`${badge(waiting)} waiting on you`}>{badge(waiting)}</span> : null}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          )}
          {viewer && (
            <form class="who" method="post" action="/console/logout">
              <span>Signed in as <strong>{viewer.person?.email ?? viewer.principal.name}</strong> ({viewer.principal.platformRole ?? viewer.principal.role})</span>
              <input type="hidden" name="_csrf" value={viewer.csrf} />
              <button type="submit" class="link">Sign out</button>
            </form>
          )}
        </header>
        <main id="main" tabIndex={-1}>
          <h1>{title}</h1>
          {children}
        </main>
      </body>
    </html>
  );
}

/** A hidden CSRF field for a form of a signed-in page. */
export const Csrf = ({ viewer }: { viewer: ConsoleIdentity }) => <input type="hidden" name="_csrf" value={viewer.csrf} />;

/** Time as an ISO stamp with a readable text (UTC, so every viewer reads the same). */
export function Time({ at }: { at: Date | string | null | undefined }) {
  if (!at) return <span>—</span>;
  const d = typeof at === 'string' ? new Date(at) : at;
  return <time datetime={d.toISOString()}>{d.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>;
}

/** How long ago (or until), in words: "3 min ago", "in 2 h". */
export function relative(at: Date, now = new Date()): string {
  const ms = at.getTime() - now.getTime();
  const abs = Math.abs(ms);
  const text = abs < 60_000 ? `${Math.round(abs / 1000)} s` : abs < 3_600_000 ? `${Math.round(abs / 60_000)} min` : abs < 86_400_000 ? `${Math.round(abs / 3_600_000)} h` : `${Math.round(abs / 86_400_000)} d`;
  return ms < 0 ? `${text} ago` : `in ${text}`;
}

/** A status as text and colour (never colour alone). */
export const Status = ({ status }: { status: string }) => <span class={`status status-${status}`}>{status.replace(/_/g, ' ')}</span>;

/** A page's problem, said in words (an error page, or a refusal above a form). */
export const Problem = ({ message }: { message: string }) => <p class="problem" role="alert">{message}</p>;
