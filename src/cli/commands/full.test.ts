import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { STOPPED_ON_REQUEST, type FullCopyResult } from '../../copy/types.js';
import { chunkBars, renderFull } from './full.js';

/** A stream that says it is a terminal and keeps what is written to it. */
function fakeTerminal() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns: 120 });
  return { stream, text: () => text };
}

describe('chunkBars', () => {
  it('follows the chunk total as planning adds chunks', () => {
    const term = fakeTerminal();
    const bars = chunkBars(term.stream);
    bars.update([{ table: 'member', chunksTotal: 1, chunksDone: 0, rowsDone: 0 }]);
    bars.update([{ table: 'member', chunksTotal: 3, chunksDone: 2, rowsDone: 2000 }]);
    bars.update([{ table: 'member', chunksTotal: 4, chunksDone: 4, rowsDone: 3500 }]);
    bars.stop();
    expect(term.text()).toContain('4/4 chunks, 3500 rows');
    expect(term.text()).not.toMatch(/\b[2-4]\/1 chunks/);
  });
});

describe('renderFull', () => {
  const result = (errors: string[]): FullCopyResult => ({
    jobId: 7,
    job: 'member',
    state: 'incomplete',
    method: 'load',
    startPositions: [],
    tables: [{ table: 'member', chunks: 4, chunksDone: 3, rows: 30, rowsThisRun: 30, servers: { a: 30 } }],
    servers: [{ server: 'a', rows: 30, shards: 4 }],
    seconds: 1,
    rowsThisRun: 30,
    rowsPerSec: 30,
    chunksThisRun: 3,
    rejectedValues: 0,
    left: [{ table: 'member', chunkNo: 3, state: 'failed', lowerKey: ['30'], upperKey: null, error: 'x' }],
    errors,
  });

  it('says a rerun finishes the chunks left only when no error stands in the way', () => {
    expect(renderFull(result([]))).toContain('1 chunks are left; run membermig full again to finish them:');
    const stopped = renderFull(result(['table member, key (2), column k: the shard key is NULL (value NULL); rows.on_unrepresentable is fail']));
    expect(stopped).toContain('1 chunks are left; deal with the errors below, then run membermig full again:');
    expect(stopped).toContain('error: table member, key (2)');
    // A stop on request is no error to deal with: a rerun finishes.
    expect(renderFull(result([STOPPED_ON_REQUEST]))).toContain('1 chunks are left; run membermig full again to finish them:');
  });
});
