/**
 * JSON parsing that keeps integers above 2^53 exact. Debezium writes int64 values (BIGINT keys,
 * NanoTimestamp, ts_ns) as bare JSON numbers, and JSON.parse rounds those to the nearest double.
 *
 * Integer tokens of 16 or more digits outside strings are turned into strings of their digits
 * before the native JSON.parse runs, so every other value is parsed by V8's fast parser. The
 * decoder reads integer fields from a number or a digit string alike. (Our own token handling
 * rather than a full JS JSON parser such as lossless-json: the consumer parses every event, and
 * the native parser is several times faster; 16 digits is the first length that can exceed 2^53.)
 * The tokens are found by one pass over the characters (strings skipped), which costs about a
 * tenth of the parse; a regex replace with a callback per string cost more than the parse itself.
 */

const QUOTE = 34;
const BACKSLASH = 92;
const MINUS = 45;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
/** Characters before or after a digit run that make it part of a fraction or an exponent. */
const isFractionOrExponent = (c: number): boolean => c === 46 /* . */ || c === 101 /* e */ || c === 69 /* E */;

export function parseJsonLossless(text: string): unknown {
  let out = '';
  let copied = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (isDigit(c)) {
      let end = i + 1;
      while (end < n && isDigit(text.charCodeAt(end))) end++;
      if (end - i >= 16 && isIntegerToken(text, i, end)) {
        const start = text.charCodeAt(i - 1) === MINUS ? i - 1 : i;
        out += `${text.slice(copied, start)}"${text.slice(start, end)}"`;
        copied = end;
      }
      i = end - 1;
    }
  }
  return JSON.parse(copied === 0 ? text : out + text.slice(copied));
}

/** The digit run text[from, end) is a whole integer token (with its sign), not a fraction or an exponent. */
function isIntegerToken(text: string, from: number, end: number): boolean {
  if (isFractionOrExponent(text.charCodeAt(end))) return false;
  let before = text.charCodeAt(from - 1);
  if (before === MINUS) before = text.charCodeAt(from - 2);
  return !(isDigit(before) || isFractionOrExponent(before) || before === 43 /* + */ || before === MINUS);
}
