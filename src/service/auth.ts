import { createHash, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../core/errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Node control's bearer check. Both sides are hashed first so the comparison takes the
 * same time whatever the lengths. No key configured → node control is off (403).
 */
export function checkNodeControlKey(configured: string | undefined, authorization: string | undefined): void {
  if (configured === undefined || configured === '') throw new GatewayError('node_control_disabled');
  const presented = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1] ?? authorization ?? '';
  if (!timingSafeEqual(digest(presented.trim()), digest(configured))) throw new GatewayError('unauthorized');
}
