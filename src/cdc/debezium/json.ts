/**
 * JSON parsing that keeps integers above 2^53 exact. Debezium writes int64 values (BIGINT keys,
 * NanoTimestamp, ts_ns) as bare JSON numbers, and JSON.parse rounds those to the nearest double.
 *
 * Integer tokens of 16 or more digits outside strings are turned into strings of their digits
 * before the native JSON.parse runs, so every other value is parsed by V8's fast parser. The
 * decoder reads integer fields from a number or a digit string alike. (Our own token handling
 * rather than a full JS JSON parser such as lossless-json: the consumer parses every event, and
 * the native parser is several times faster; 16 digits is the first length that can exceed 2^53.)
 */

// A JSON string (skipped as is), or an integer token of 16+ digits not part of a fraction or exponent.
const BIG_INTEGER_OR_STRING = /"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])-?\d{16,}(?![\d.eE])/g;
const SIXTEEN_DIGITS = /\d{16}/;

export function parseJsonLossless(text: string): unknown {
  if (!SIXTEEN_DIGITS.test(text)) return JSON.parse(text);
  return JSON.parse(text.replace(BIG_INTEGER_OR_STRING, (m) => (m.charCodeAt(0) === 34 ? m : `"${m}"`)));
}
