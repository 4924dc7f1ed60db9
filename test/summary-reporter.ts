import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints one plain closing line, `tests: N passed, N failed, N skipped`, after vitest's own
 * summary, so that CI logs can be read by tools that do not know vitest's format.
 */
export default class SummaryReporter implements Reporter {
  private line = '';

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A file that failed outside its tests (a hook, an import) counts as one failure.
      if (mod.state() === 'failed' && ![...mod.children.allTests()].some((t) => t.result().state === 'failed')) failed++;
    }
    this.line = `tests: ${passed} passed, ${failed} failed, ${skipped} skipped`;
  }

  /** Runs after every reporter's onTestRunEnd, so the line is the last one printed. */
  onFinished(): void {
    if (this.line) process.stdout.write(`\n${this.line}\n`);
  }
}
