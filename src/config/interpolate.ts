import { readFileSync } from 'node:fs';
import { registerSecret } from './secrets.js';

export type PathSegment = string | number;

export interface InterpolationProblem {
  path: PathSegment[];
  message: string;
}

/** `${...}` holding no `${` itself: in "${PW@host/${DB}" only ${DB} is a reference, and the first ${ is not closed. */
const REFERENCE = /\$\{((?:(?!\$\{)[^}])*)\}/g;

/**
 * Replaces `${NAME}` with the environment variable and `${file:PATH}` with the file's content
 * (one trailing newline dropped) in every string of a parsed YAML tree.
 *
 * Every substituted value is registered as a secret, so it is never printed or logged: a reference
 * marks a value its owner kept out of the file, and a password put under the wrong key (a port, a
 * dc) must not show up in an error or in status. A value put into a URL's user:password part is
 * percent-encoded, so a password with '%', '/', '@' or '#' reaches the server as it is.
 */
export function interpolate(
  value: unknown,
  env: NodeJS.ProcessEnv,
  problems: InterpolationProblem[],
  path: PathSegment[] = [],
): unknown {
  if (typeof value === 'string') return interpolateString(value, env, problems, path);
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, problems, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, problems, [...path, k]);
    return out;
  }
  return value;
}

function interpolateString(text: string, env: NodeJS.ProcessEnv, problems: InterpolationProblem[], path: PathSegment[]): string {
  // Used as it stands, "mysql://root:${MM_PW@host/" passed every check and failed at connect time. What
  // follows the ${ is not shown: it may be the password itself.
  const unclosed = text.replace(REFERENCE, (ref) => ' '.repeat(ref.length)).indexOf('${');
  if (unclosed >= 0) {
    problems.push({ path, message: `the \${ at character ${unclosed + 1} is not closed by a }: write \${NAME} or \${file:PATH} (a value holding \${ itself can come from \${file:PATH})` });
    return text;
  }
  const userinfo = userinfoRange(text);
  return text.replace(REFERENCE, (_match, ref: string, offset: number) => {
    const reference = ref.trim();
    const resolved = resolveReference(reference, env);
    if ('error' in resolved) {
      problems.push({ path, message: resolved.error });
      return '';
    }
    const inUserinfo = userinfo !== null && offset >= userinfo.start && offset < userinfo.end;
    registerSecret(resolved.value);
    return inUserinfo ? encodeURIComponent(resolved.value) : resolved.value;
  });
}

/** Where the user:password part of a URL template lies (`scheme://` up to the `@`), references skipped; null if none. */
function userinfoRange(text: string): { start: number; end: number } | null {
  const scheme = text.indexOf('://');
  if (scheme < 0) return null;
  for (let i = scheme + 3; i < text.length; i++) {
    if (text.startsWith('${', i)) {
      const close = text.indexOf('}', i);
      if (close < 0) return null;
      i = close;
    } else if (text[i] === '@') return { start: scheme + 3, end: i };
    else if (text[i] === '/' || text[i] === '?' || text[i] === '#') return null;
  }
  return null;
}

function resolveReference(ref: string, env: NodeJS.ProcessEnv): { value: string } | { error: string } {
  if (ref.startsWith('file:')) {
    const file = ref.slice('file:'.length);
    if (!file) return { error: '${file:} needs a path' };
    try {
      return { value: readFileSync(file, 'utf8').replace(/\r?\n$/, '') };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      return { error: `cannot read secret file ${file} (${code})` };
    }
  }
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(ref)) return { error: `\${${ref}} is not a valid reference: use \${NAME} or \${file:PATH}` };
  const value = env[ref];
  if (value === undefined) return { error: `environment variable ${ref} is not set` };
  return { value };
}
