/** The statuses fetch follows when the answer names a `location`. */
export const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * The next request of a followed redirect, as fetch makes it: 303 (and 301/302 after a POST)
 * become a GET without a body, and credentials meant for one origin never go to another.
 * `drop`: the request headers the next hop must not carry.
 */
export function redirectHop(status: number, method: string, from: URL, to: URL): { method: string; withoutBody: boolean; drop: string[] } {
  const withoutBody = status === 303 ? method !== 'HEAD' : (status === 301 || status === 302) && method === 'POST';
  const drop = [
    ...(withoutBody ? ['content-type', 'content-length', 'content-encoding'] : []),
    ...(to.origin !== from.origin ? ['authorization', 'cookie', 'proxy-authorization'] : []),
  ];
  return { method: withoutBody ? 'GET' : method, withoutBody, drop };
}
