import { readFileSync } from 'node:fs';
import { registerSecret } from './secrets.js';

export type PathSegment = string | number;

export interface InterpolationProblem {
  path: PathSegment[];
  message: string;
}

const REFERENCE = /\$\{([^}]*)\}/g;

/**
 * Replaces `${NAME}` with the environment variable and `${file:PATH}` with the file's content
 * (one trailing newline dropped) in every string of a parsed YAML tree. Every substituted value
 * is registered as a secret so that it is never printed or logged.
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
  return text.replace(REFERENCE, (_match, ref: string) => {
    const resolved = resolveReference(ref.trim(), env);
    if ('error' in resolved) {
      problems.push({ path, message: resolved.error });
      return '';
    }
    registerSecret(resolved.value);
    return resolved.value;
  });
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
