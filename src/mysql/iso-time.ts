/**
 * A control-store time column as ISO 8601 UTC text (`2026-11-29T12:00:00.123456Z`) in a SELECT: the
 * one form in which status, histories and messages give times.
 */
export function isoTime(column: string, alias = column): string {
  return `DATE_FORMAT(${column}, '%Y-%m-%dT%H:%i:%s.%fZ') AS ${alias}`;
}
