/**
 * A database URL whose connections start with a server setting (`options=-c name=value`): the
 * server applies it at connection start, so no query races a borrower's first one. Options the
 * URL has are kept; a URL that sets the name itself is left as it is.
 */
export function withSessionSetting(databaseUrl: string, name: string, value: string): string {
  const url = new URL(databaseUrl);
  const options = url.searchParams.get('options') ?? '';
  if (options.includes(name)) return databaseUrl;
  url.searchParams.set('options', `${options} -c ${name}=${value}`.trim());
  return url.toString();
}
