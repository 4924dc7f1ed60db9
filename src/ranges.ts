import { RefusedError } from './errors.js';

/**
 * Lists of whole numbers as people type and read them: "0-3,7" for verify --shards, dead letter
 * ids for sync skip-dead-letters, the shards of a verify scope in status.
 */

export interface RangeLimits {
  /** The flag or command the text came from, first in every refusal. */
  what: string;
  /** What one number is, for refusals ("a shard number", "an id"). */
  noun: string;
  min: number;
  /** Highest number allowed (inclusive). */
  max: number;
  /** Most numbers the list may expand to. */
  maxCount?: number;
}

/** "12,15-18, 3" → [3, 12, 15, 16, 17, 18]: sorted, without repeats; each bound checked before a range is expanded. */
export function parseRanges(text: string, limits: RangeLimits): number[] {
  const { what, noun, min, max, maxCount = Infinity } = limits;
  const out = new Set<number>();
  for (const part of text.split(',').map((s) => s.trim())) {
    const m = /^(\d{1,15})(?:-(\d{1,15}))?$/.exec(part);
    if (!m) throw new RefusedError(`${what}: ${part === '' ? 'an empty item' : `"${part.slice(0, 40)}"`} is not ${noun} or a range like ${min}-${min + 3}`);
    const first = Number(m[1]);
    const last = Number(m[2] ?? m[1]);
    if (last < first) throw new RefusedError(`${what}: range ${part} ends before it starts`);
    if (first < min || last > max) throw new RefusedError(`${what}: ${part} is outside ${min}..${max}`);
    if (out.size + (last - first + 1) > maxCount) throw new RefusedError(`${what}: more than ${maxCount} at once`);
    for (let n = first; n <= last; n++) out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}

/** Sorted numbers as ranges: [4, 5, 6, 9] → "4-6,9". */
export function formatRanges(list: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < list.length; ) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j]! + 1) j++;
    out.push(i === j ? String(list[i]) : `${list[i]}-${list[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** Most ranges a message lists; past that it gives the count and the span. */
const MAX_RANGES_SHOWN = 8;

/**
 * Some shards, as a message names them: "shard 7", "shards 0-3,9", or "256 shards from 768 to 1023"
 * when the ranges would be many. A write at 1,024 shards reaches hundreds of shards of a server, and
 * naming each one made an error line (and the chunk's last error in status) of ~1,400 characters.
 */
export function describeShards(shards: number[]): string {
  const sorted = [...new Set(shards)].sort((a, b) => a - b);
  if (sorted.length === 1) return `shard ${sorted[0]}`;
  const ranges = formatRanges(sorted);
  if (ranges.split(',').length <= MAX_RANGES_SHOWN) return `shards ${ranges}`;
  return `${sorted.length} shards from ${sorted[0]} to ${sorted[sorted.length - 1]}`;
}
