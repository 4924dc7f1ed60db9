/**
 * `npm run bench -- [NAME...]`: runs the benchmarks in bench/*.bench.ts (all, or those named),
 * prints a readable table per benchmark and, last, one JSON line with every figure and the
 * ratios to the baselines measured in the same run.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderTable } from '../src/cli/render.js';
import type { Benchmark, BenchResult } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));

async function loadBenchmarks(): Promise<Benchmark[]> {
  const files = readdirSync(here).filter((f) => f.endsWith('.bench.ts')).sort();
  const list: Benchmark[] = [];
  for (const f of files) list.push((await import(pathToFileURL(join(here, f)).href)).default as Benchmark);
  return list;
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const all = await loadBenchmarks();
  const unknown = wanted.filter((w) => !all.some((b) => b.name === w));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark ${unknown.join(', ')}; have: ${all.map((b) => b.name).join(', ')}\n`);
    process.exit(2);
  }
  const selected = wanted.length > 0 ? all.filter((b) => wanted.includes(b.name)) : all;
  const results: BenchResult[] = [];
  for (const bench of selected) {
    process.stderr.write(`\n== ${bench.name}: ${bench.description}\n`);
    const result = await bench.run();
    results.push(result);
    process.stdout.write(`\n${bench.name}\n`);
    process.stdout.write(renderTable(['measure', 'value', 'unit', 'note'], result.figures.map((f) => [f.measure, round(f.value), f.unit, f.note ?? ''])) + '\n');
    if (result.ratios.length > 0) {
      process.stdout.write(
        renderTable(['ratio', 'value', 'target', 'met'], result.ratios.map((r) => [r.name, round(r.value), r.target ?? '-', r.met === undefined ? '-' : r.met ? 'yes' : 'NO'])) + '\n',
      );
    }
  }
  process.stdout.write(JSON.stringify({ benchmarks: results }) + '\n');
}

function round(v: number): number {
  return Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 1000) / 1000;
}

await main();
