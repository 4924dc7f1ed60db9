import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { chunkBars } from './full.js';

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
