import type { ConsoleIdentity } from '../../core/identity/console-sessions.js';
import { Page, Problem } from './layout.js';

const TITLES: Record<number, string> = { 400: 'That did not work', 401: 'Sign in needed', 403: 'Not allowed', 404: 'Not found', 409: 'Already changed', 429: 'Too many attempts' };

export function ErrorPage({ status, message, viewer, fields }: { status: number; message: string; viewer?: ConsoleIdentity; fields?: Array<{ field: string; message: string }> }) {
  return (
    <Page title={TITLES[status] ?? 'Something went wrong'} viewer={viewer}>
      <Problem message={message} />
      {fields && fields.length > 0 && (
        <ul class="fields">
          {fields.map((f) => <li><code>{f.field}</code>: {f.message}</li>)}
        </ul>
      )}
      <p><a href="/console">Back to the inbox</a></p>
    </Page>
  );
}
