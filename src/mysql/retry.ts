import type { Logger } from '../log.js';

/**
 * Error codes that mean "the server is (for now) not there or busy": worth another attempt. The
 * statement itself is fine: sync waits for the server on these and never dead-letters the write.
 */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_QUERY_INTERRUPTED',
  // --read-only / super_read_only: a primary demoted (or not yet promoted) during a failover.
  'ER_OPTION_PREVENTS_STATEMENT',
]);

/**
 * A TLS handshake failure (a certificate the client refuses, a server without TLS) is marked fatal
 * by the driver, but another attempt will not cure it: retried as if the server were down, the
 * mistake would hide behind backoff and "server unreachable".
 */
const TLS_FAILURE = /^HANDSHAKE_|SSL|TLS|CERT/;

export function isTransient(e: unknown): boolean {
  const err = e as { code?: string; fatal?: boolean };
  if (err.code !== undefined && TLS_FAILURE.test(err.code)) return false;
  return (err.code !== undefined && TRANSIENT_CODES.has(err.code)) || err.fatal === true;
}

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  baseMs: number;
  maxMs?: number;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `work`, retrying transient failures with doubling backoff; other errors go straight up. */
export async function withRetry<T>(what: string, policy: RetryPolicy, logger: Logger, work: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (e) {
      if (!isTransient(e) || attempt >= policy.retries) throw e;
      const wait = Math.min(policy.maxMs ?? 30_000, policy.baseMs * 2 ** attempt);
      logger.warn({ what, attempt: attempt + 1, of: policy.retries, waitMs: wait, error: (e as Error).message }, 'transient failure, retrying');
      await sleep(wait);
    }
  }
}

/** An item the server refused, with its message. */
export interface Refusal<T> {
  item: T;
  error: Error;
}

/**
 * Writes the items in one go; if the server refuses that (a value too long, a constraint: not a
 * transient failure), writes each item alone to find the ones it refuses, and returns them. The
 * others are written. A transient failure is thrown (the caller waits for the server), never
 * taken for a refusal. Only for idempotent writes: items written before a refusal are written again.
 */
export async function writeFindingRefusals<T>(items: readonly T[], write: (items: readonly T[]) => Promise<void>): Promise<Refusal<T>[]> {
  try {
    await write(items);
    return [];
  } catch (e) {
    if (isTransient(e)) throw e;
  }
  const refusals: Refusal<T>[] = [];
  for (const item of items) {
    try {
      await write([item]);
    } catch (e) {
      if (isTransient(e)) throw e;
      refusals.push({ item, error: e as Error });
    }
  }
  return refusals;
}
