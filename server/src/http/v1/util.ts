import { performance } from 'node:perf_hooks';
import type { Request, Response } from 'express';
import type { Context } from '../../context.js';
import type { LastChange } from '../../db/schema.js';
import { ApiError, notFound } from '../../errors.js';
import { encodeEventCursor } from '../../events/feed.js';
import { type IdKind, isId } from '../../ids.js';
import type { Page } from '../../pagination.js';

/**
 * Sends a body typed by the contract: a handler cannot return a shape roster.yaml does not allow.
 * `Server-Timing` reports the time spent in the server (benchmarks read it).
 */
export function send<T extends object>(req: Request, res: Response, status: number, body: T): void {
  const payload = JSON.stringify(body);
  res.setHeader('Server-Timing', `app;dur=${(performance.now() - req.startedAt).toFixed(2)}`);
  res.status(status).type('application/json').send(payload);
}

/** A path id; ids that cannot exist answer 404 without a database round trip. */
export function pathId(req: Request, name: string, kind: IdKind, resource: string): string {
  const raw = req.params[name];
  const value = typeof raw === 'string' ? raw : '';
  if (!isId(kind, value)) throw notFound(resource, value);
  return value;
}

/** A plain path parameter (role keys). */
export function pathParam(req: Request, name: string): string {
  const raw = req.params[name];
  return typeof raw === 'string' ? raw : '';
}

/** Where a change made through the management API came from (for explain and audits). */
export function apiChange(req: Request, at: Date): LastChange {
  return { at: at.toISOString(), request_id: req.id, via: 'api' };
}

/**
 * Runs a list and adds its `event_cursor`: the feed head read before the list's data, so every
 * event up to it is reflected in the data (events after it may be too: handlers are idempotent).
 */
export async function withEventCursor<T>(
  ctx: Context,
  list: () => Promise<Page<T>>,
): Promise<Page<T> & { event_cursor: string }> {
  const head = ctx.feedHead();
  const page = await list();
  return { ...page, event_cursor: encodeEventCursor(head) };
}

/** Optional id filters in query strings: a malformed id matches nothing, as a 400 names it. */
export function idFilter(
  value: string | undefined,
  kind: 'organization' | 'connection',
  name: string,
): string | undefined {
  if (value === undefined) return undefined;
  if (!isId(kind, value)) {
    throw new ApiError(400, 'validation_failed', `${name}: not a ${kind} id`, {
      details: [{ path: name, code: 'invalid_id', message: `not a ${kind} id` }],
    });
  }
  return value;
}
