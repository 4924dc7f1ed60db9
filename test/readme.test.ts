import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/main.js';
import { ROOT, runCli } from './support/cli.js';
import { createTestEnv, type TestEnv } from './support/env.js';

/**
 * README's Command reference and Cutover runbook against the real CLI: the reference lists every option
 * --help has, and every command the runbook gives runs as written (a gate may refuse it; bad usage may not).
 */
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const program = buildProgram({ stdout: new PassThrough(), stderr: new PassThrough() }, () => {});

function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  expect(start, `README section ${title}`).toBeGreaterThan(0);
  return README.slice(start, README.indexOf('\n## ', start + 1));
}

function leaves(cmd: Command): Command[] {
  return cmd.commands.length === 0 ? [cmd] : cmd.commands.flatMap(leaves);
}

function pathOf(cmd: Command): string[] {
  return cmd.parent ? [...pathOf(cmd.parent), cmd.name()] : [];
}

/** The leaf command `words` start with, and the words after it; undefined if they name no command. */
function commandOf(words: string[]): { cmd: Command; rest: string[] } | undefined {
  let at = program;
  let i = 0;
  for (; i < words.length; i++) {
    const sub = at.commands.find((c) => c.name() === words[i]);
    if (!sub) break;
    at = sub;
  }
  return i > 0 && at.commands.length === 0 ? { cmd: at, rest: words.slice(i) } : undefined;
}

/** Words of a command as a shell splits them; the runbook's placeholders ("…", ID) made concrete. */
function words(text: string): string[] {
  return [...text.replace(/^membermig /, '').matchAll(/"([^"]*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? (m[1] === '…' ? 'runbook' : m[1]) : m[2] === 'ID' ? '1' : m[2]!));
}

/** What commander and the commands say to a command line they cannot take. */
const BAD_USAGE = /unknown option|unknown command|missing required argument|too many arguments|argument missing|reason is required|is not a percentage/;

const runbook = [...section('Cutover runbook').matchAll(/`([^`]+)`/g)].map((m) => words(m[1]!)).filter((w) => commandOf(w) !== undefined);

describe('README against the CLI', () => {
  it('the Command reference lists every option of every command', () => {
    const reference = section('Command reference');
    const missing: string[] = [];
    for (const cmd of leaves(program)) {
      const top = pathOf(cmd)[0]!;
      const entry = new RegExp(`\\n- \`membermig ${top}\\b[\\s\\S]*?(?=\\n- |\\n\\n)`).exec(reference)?.[0] ?? '';
      for (const option of cmd.options) if (option.long && !entry.includes(option.long)) missing.push(`${pathOf(cmd).join(' ')} ${option.long}`);
    }
    expect(missing).toEqual([]);
  });

  it('every option a runbook command uses exists', () => {
    expect(runbook.length).toBeGreaterThan(15);
    const unknown: string[] = [];
    for (const w of runbook) {
      const { cmd, rest } = commandOf(w)!;
      for (const flag of rest.filter((r) => r.startsWith('--'))) if (!cmd.options.some((o) => o.long === flag)) unknown.push(`${w.join(' ')}: ${flag}`);
    }
    expect(unknown).toEqual([]);
  });

  describe('against real servers', () => {
    let env: TestEnv;
    beforeAll(async () => {
      env = await createTestEnv({ shardCount: 4, legacySql: ['CREATE TABLE member (member_id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL)', "INSERT INTO member VALUES (1, 'a'), (2, 'b')"] });
    }, 120_000);
    afterAll(async () => env?.cleanup());

    it('every runbook command runs as written, in order: done, or refused by a gate or a rule, never for bad usage', async () => {
      // A service (sync) and a watch run until stopped: their options are checked above.
      for (const w of runbook.filter((w) => w[0] !== 'sync' && !w.includes('--watch'))) {
        const r = await runCli([...w, '--config', env.configPath]);
        expect(r.stderr, w.join(' ')).not.toMatch(BAD_USAGE);
        expect([0, 1, 2], `${w.join(' ')}: ${r.stderr}`).toContain(r.code);
      }
    }, 120_000);
  });
});
