import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { NextFunction, Request, Response } from 'express';
import type { VNode } from 'preact';
import { render } from 'preact-render-to-string';
import type { Context } from '../../context.js';
import type { SyncLogWriter } from '../../directory/sync-log.js';
import { ApiError } from '../../errors.js';
import { isId } from '../../ids.js';
import type { PortalSession } from '../../portal/links.js';
import { type ConnectionSummary, summarizeConnections } from '../../portal/queries.js';

/** What the portal's route modules share: their dependencies, headers, rendering, the session. */

export interface PortalDeps {
  ctx: Context;
  syncLog: SyncLogWriter;
}

/**
 * Every portal response: no framing, no inline script or style, nothing from another origin, no
 * referrer (a link token must not leak), never cached.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function securityHeaders(_req: Request, res: Response, next: NextFunction) {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-store');
  next();
}

/** The stylesheet and script ship in server/public/portal (next to src/ and dist/). */
export function loadAssets(): Record<string, { type: string; body: string }> {
  const candidates = ['../public/portal/', '../../../public/portal/'].map((rel) =>
    fileURLToPath(new URL(rel, import.meta.url)),
  );
  const dir = candidates.find((candidate) => existsSync(`${candidate}portal.css`));
  if (!dir) throw new Error(`portal assets not found in ${candidates.join(' or ')}`);
  return {
    'portal.css': { type: 'text/css; charset=utf-8', body: readFileSync(`${dir}portal.css`, 'utf8') },
    'portal.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(`${dir}portal.js`, 'utf8') },
  };
}

export function page(res: Response, status: number, vnode: VNode): void {
  res
    .status(status)
    .type('html')
    .send(`<!doctype html>${render(vnode)}`);
}

declare global {
  namespace Express {
    interface Locals {
      portalSession?: PortalSession;
    }
  }
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Thrown for a connection id the session may not see: another organization's reads as absent. */
export const notHere = () => new ApiError(404, 'not_found', 'There is no such connection here.');

export const sessionOf = (res: Response) => res.locals.portalSession!;

/** The connection named by the path, if it belongs to the session's organization. */
export async function ownSummary(ctx: Context, req: Request, res: Response): Promise<ConnectionSummary> {
  const id = String(req.params.connection_id);
  if (!isId('connection', id)) throw notHere();
  const [summary] = await summarizeConnections(ctx, sessionOf(res).organizationId, id);
  if (!summary) throw notHere();
  return summary;
}
