import { Unrepresentable } from '../types.js';
import { keptFraction } from '../convert.js';

/**
 * SQL Server date/time text (as CONVERT(..., 121) / CAST(... AS varchar) print it) to MySQL literal
 * text. MySQL rounds extra fractional digits without a warning, which can carry into the next
 * second or day, so a digit that the target precision would drop must be zero; otherwise the value
 * is Unrepresentable. MySQL DATE/DATETIME are only supported from year 1000 on.
 */

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?)?$/;
const TIME = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/;

function expectString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`expected ${what} as text from the SELECT expression, got ${typeof value}`);
  return value;
}

/** 'YYYY-MM-DD' → DATE text. */
export function toMysqlDate(value: unknown): string | Unrepresentable {
  const text = expectString(value, 'a date');
  const m = DATE_TIME.exec(text);
  if (!m || m[4] !== undefined) throw new TypeError(`not a date: "${text}"`);
  if (Number(m[1]) < 1000) return new Unrepresentable('MySQL DATE is only supported from 1000-01-01', text);
  return text;
}

/** 'YYYY-MM-DD hh:mm:ss[.f{1,7}]' → DATETIME(fsp) text with exactly fsp fraction digits. */
export function toMysqlDateTime(value: unknown, fsp: number): string | Unrepresentable {
  const text = expectString(value, 'a date and time');
  const m = DATE_TIME.exec(text);
  if (!m || m[4] === undefined) throw new TypeError(`not a date and time: "${text}"`);
  if (Number(m[1]) < 1000) return new Unrepresentable('MySQL DATETIME is only supported from 1000-01-01', text);
  const fraction = keptFraction(m[7] ?? '', fsp);
  if (fraction === null) return new Unrepresentable(`DATETIME(${fsp}) would round the fraction .${m[7]}`, text);
  return `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}${fsp > 0 ? '.' + fraction : ''}`;
}

/** 'hh:mm:ss[.f{1,7}]' → TIME(fsp) text. */
export function toMysqlTime(value: unknown, fsp: number): string | Unrepresentable {
  const text = expectString(value, 'a time');
  const m = TIME.exec(text);
  if (!m) throw new TypeError(`not a time: "${text}"`);
  const fraction = keptFraction(m[4] ?? '', fsp);
  if (fraction === null) return new Unrepresentable(`TIME(${fsp}) would round the fraction .${m[4]}`, text);
  return `${m[1]}:${m[2]}:${m[3]}${fsp > 0 ? '.' + fraction : ''}`;
}

/**
 * datetimeoffset, read as `<local wall clock, style 121> <offset minutes>` (see the type map), to
 * its canonical text 'YYYY-MM-DD hh:mm:ss[.f{scale}] +hh:mm': the same form SQL Server prints, kept
 * whole (100 ns and the offset included) in a VARCHAR column.
 */
export function toDatetimeoffsetText(value: unknown, scale: number): string {
  const text = expectString(value, 'a datetimeoffset');
  const m = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))? (-?\d{1,3})$/.exec(text);
  if (!m) throw new TypeError(`not a datetimeoffset read as "<datetime2> <offset minutes>": "${text}"`);
  return datetimeoffsetText(m[1]!, m[2] ?? '', Number(m[3]), scale);
}

/** The canonical datetimeoffset text from its parts; also for change events decoded elsewhere. */
export function datetimeoffsetText(localDateTime: string, fraction: string, offsetMinutes: number, scale: number): string {
  if (!Number.isInteger(offsetMinutes) || Math.abs(offsetMinutes) > 14 * 60) throw new RangeError(`offset ${offsetMinutes} min is outside ±14:00`);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  const kept = keptFraction(fraction, scale);
  if (kept === null) throw new RangeError(`fraction .${fraction} has more digits than datetimeoffset(${scale})`);
  return `${localDateTime}${scale > 0 ? '.' + kept : ''} ${offset}`;
}
