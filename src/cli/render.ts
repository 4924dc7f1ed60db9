import { redactSecrets } from '../config/secrets.js';

/** A plain aligned text table, for people; cells scrubbed of secrets before they are measured (else the columns went awry). */
export function renderTable(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : redactSecrets(String(c)))));
  const widths = headers.map((h, i) => Math.max(displayWidth(h), ...cells.map((r) => displayWidth(r[i] ?? ''))));
  const line = (r: string[]) => r.map((c, i) => c + ' '.repeat(Math.max(0, widths[i]! - displayWidth(c)))).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** Wide (CJK) characters take two columns in a terminal. */
function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += /[\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6]/u.test(ch) ? 2 : 1;
  return w;
}

/**
 * JSON text for --json output (2-space indent; `compact`: one line, for a stream of documents):
 * bigints and Buffers as text, secrets scrubbed from every string. Strings, not the finished text:
 * a secret of digits would otherwise turn a number into a bare *** and the document invalid.
 */
export function renderJson(value: unknown, compact = false): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === 'string') return redactSecrets(v);
      if (typeof v === 'bigint') return redactSecrets(v.toString());
      if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
        return Buffer.from((v as { data: number[] }).data).toString('hex');
      }
      return v;
    },
    compact ? undefined : 2,
  );
}

export function section(title: string, body: string): string {
  return `${title}\n${body}`;
}
