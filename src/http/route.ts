import type { Context } from 'koa';
import type { z } from 'zod';
import type { AccessRole } from '../core/identity/platform-roles.js';
import type { AppError } from '../errors.js';
import type { Principal } from '../core/identity/principal.js';

type AnyObject = z.ZodType<Record<string, unknown>>;

/** The request as a handler sees it: authenticated and validated. */
export interface RouteRequest<P, Q, B> {
  principal: Principal;
  params: P;
  query: Q;
  body: B;
  ctx: Context;
}

export interface RouteResult {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * One operation of a REST dialect. The same definition registers the Koa route, validates the
 * request and documents the operation in /openapi.json. Paths use OpenAPI syntax;
 * `{*name}` captures several segments (repository identifiers contain slashes).
 */
export interface RouteSpec<P = any, Q = any, B = any> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  summary: string;
  description?: string;
  /** Roles allowed (core roles, or platform roles such as `editor`: see core/identity/platform-roles.ts); `public` routes need no token. */
  roles: readonly AccessRole[] | 'public';
  /**
   * Also admit a per-execution token (CI/CD runs), for its own run only: the route must have an
   * `{id}` path parameter, which must equal the token's run id (checked in http/auth.ts). The token's
   * role is `application`, so `roles` must include it. Every route without this flag refuses such tokens.
   */
  executionToken?: boolean;
  params?: z.ZodType<P> & AnyObject;
  query?: z.ZodType<Q> & AnyObject;
  body?: z.ZodType<B>;
  /** Documented responses: status → description (and optional schema). */
  responses: Record<number, string | { description: string; schema: z.ZodType }>;
  handler(req: RouteRequest<P, Q, B>): Promise<RouteResult>;
}

export const route = <P, Q, B>(spec: RouteSpec<P, Q, B>): RouteSpec => spec as RouteSpec;

/** A REST surface: a prefix, its routes, and how its errors look on the wire. */
export interface Dialect {
  name: string;
  prefix: string;
  routes: RouteSpec[];
  envelope(err: AppError): unknown;
  /** The HTTP status of an error where this dialect's contract differs from the common mapping (e.g. 422 for validation). */
  statusOf?(err: AppError): number;
  /**
   * Whether unknown paths under the prefix get this dialect's 404 (default). A dialect sharing its
   * prefix with one mounted after it leaves them to that one.
   */
  fallthrough?: boolean;
}
