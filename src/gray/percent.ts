import { RefusedError } from '../errors.js';

/** Percentages are stored as basis points: integers 0..10000, where 10000 is 100% and 1 is 0.01%. */
export const FULL_BASIS_POINTS = 10_000;

const PERCENT = /^(\d+)(?:\.(\d+))?%?$/;

/** "5%", "5", "0.25%" → basis points; refuses anything above 100% or finer than 0.01%. */
export function parsePercent(text: string, what: string): number {
  const m = PERCENT.exec(text.trim());
  if (!m) throw new RefusedError(`${what} "${text}" is not a percentage: expected e.g. 5%, 0.25% or 100%`);
  const whole = m[1]!;
  const fraction = m[2] ?? '';
  if (fraction.replace(/0+$/, '').length > 2) {
    throw new RefusedError(`${what} "${text}" is finer than the resolution of 0.01%`);
  }
  const bp = Number(whole) * 100 + Number((fraction + '00').slice(0, 2));
  if (!Number.isSafeInteger(bp) || bp > FULL_BASIS_POINTS) throw new RefusedError(`${what} "${text}" is above 100%`);
  return bp;
}

/** 125 → "1.25%", 10000 → "100%". */
export function formatPercent(bp: number): string {
  const whole = Math.floor(bp / 100);
  const fraction = bp % 100;
  return fraction === 0 ? `${whole}%` : `${whole}.${String(fraction).padStart(2, '0').replace(/0$/, '')}%`;
}
