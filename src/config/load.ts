import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ZodError } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { interpolate, type InterpolationProblem, type PathSegment } from './interpolate.js';
import { configSchema, type Config } from './schema.js';
import { registerUrlPasswordsIn } from './secrets.js';
import { crossCheck } from './validate.js';

export interface LoadedConfig {
  /** The file it came from, as given. */
  file: string;
  config: Config;
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.MEMBERMIG_CONFIG || './membermig.yaml';
}

/** Reads, interpolates and validates a config file; throws ConfigError naming file, line:column and path. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'config file not found (pass --config FILE or set MEMBERMIG_CONFIG)' : `cannot read config file (${code})`;
    throw new ConfigError([{ file, path: '', message: why }]);
  }
  return { file, config: parseConfig(text, file, env) };
}

/** Validates config text; `file` is only used in messages. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  const locate = locator(doc, lineCounter, file);

  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return { file, line: pos?.line, column: pos?.col, path: '', message: `YAML syntax: ${firstLine(e.message)}` };
      }),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (e) {
    // e.g. an alias bomb ("Excessive alias count"): bad config, refused as every other, naming the file.
    throw new ConfigError([{ file, path: '', message: `YAML: ${firstLine((e as Error).message)}` }]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ file, line: 1, column: 1, path: '', message: 'expected a YAML mapping at the top level' }]);
  }

  const interpolationProblems: InterpolationProblem[] = [];
  const interpolated = interpolate(raw, env, interpolationProblems);
  if (interpolationProblems.length > 0) {
    throw new ConfigError(interpolationProblems.map((p) => locate(p.path, p.message)));
  }

  registerUrlPasswordsIn(interpolated);
  const parsed = configSchema.safeParse(interpolated, { reportInput: true });
  if (!parsed.success) throw new ConfigError(zodProblems(parsed.error, locate, raw));

  const crossProblems = crossCheck(parsed.data);
  if (crossProblems.length > 0) throw new ConfigError(crossProblems.map((p) => locate(p.path, namingReferences(p.message, valueAt(interpolated, p.path), valueAt(raw, p.path)))));
  return parsed.data;
}

type Locate = (path: PathSegment[], message: string, keyOf?: string) => ConfigProblem;

function zodProblems(error: ZodError, locate: Locate, raw: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = issue.path.filter((p): p is PathSegment => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(locate([...path, key], `unknown key "${key}"`, key));
    } else {
      problems.push(locate(path, describeIssue(issue, valueAt(raw, path))));
    }
  }
  return problems;
}

/** `written` is the value as the file has it: where it holds ${...} references, they are named instead of the value. */
function describeIssue(issue: ZodError['issues'][number], written: unknown): string {
  if (issue.code === 'invalid_type') {
    const input = (issue as { input?: unknown }).input;
    if (input === undefined) return `required, expected ${issue.expected}`;
    return `expected ${issue.expected}, got ${describeValue(input, written)}`;
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `expected one of ${(issue.values as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return issue.message;
}

function describeValue(v: unknown, written: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  // A value read through ${NAME} or ${file:} may be a secret put in the wrong place: never echoed.
  if (typeof written === 'string' && written.includes('${')) return `${typeof v} from ${written.match(/\$\{[^}]*\}/g)!.join(', ')}`;
  // JSON.stringify prints a number too large for a double (1e400: Infinity) as null.
  return typeof v === 'number' && !Number.isFinite(v) ? `number ${String(v)}` : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * A message that quotes a value read through ${NAME} would show it scrubbed ("unknown server
 * \"***\""): it names the reference instead, as the file has it.
 */
function namingReferences(message: string, value: unknown, written: unknown): string {
  if (typeof value !== 'string' || value === '' || typeof written !== 'string' || !written.includes('${')) return message;
  return message.split(`"${value}"`).join(`from ${written}`);
}

function valueAt(tree: unknown, path: PathSegment[]): unknown {
  let at = tree;
  for (const segment of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string | number, unknown>)[segment];
  }
  return at;
}

/** Maps a path in the parsed tree back to the YAML node's line and column. */
function locator(doc: Document, lineCounter: LineCounter, file: string): Locate {
  return (path, message, keyOf) => {
    const node = keyOf !== undefined ? findKeyNode(doc, path.slice(0, -1), keyOf) : findNode(doc, path);
    const offset = node?.range?.[0];
    const pos = offset !== undefined ? lineCounter.linePos(offset) : undefined;
    return { file, line: pos?.line, column: pos?.col, path: formatPath(path), message };
  };
}

/** The deepest existing node along the path, so a missing key points at its parent. */
function findNode(doc: Document, path: PathSegment[]): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (node && typeof node === 'object' && 'range' in (node as object)) return node as Node;
  }
  return doc.contents ?? undefined;
}

function findKeyNode(doc: Document, mapPath: PathSegment[], key: string): Node | undefined {
  const map = mapPath.length === 0 ? doc.contents : doc.getIn(mapPath, true);
  if (isMap(map)) {
    for (const item of map.items) {
      if (isPair(item) && isScalar(item.key) && String(item.key.value) === key) return item.key;
    }
  }
  return findNode(doc, mapPath);
}

/** ["shards","placement",1,"server"] → "shards.placement[1].server" */
export function formatPath(path: PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

/** The yaml library's message without its code excerpt and repeated position (we print our own). */
function firstLine(s: string): string {
  return (s.split('\n')[0] ?? s).replace(/ at line \d+, column \d+:?$/, '');
}
