export interface BenchFigure {
  measure: string;
  value: number;
  unit: string;
  note?: string;
}

export interface BenchRatio {
  /** e.g. "membermig / mydumper+myloader (rows/s)" */
  name: string;
  value: number;
  /** e.g. ">= 1.5" */
  target?: string;
  met?: boolean;
}

export interface BenchResult {
  name: string;
  figures: BenchFigure[];
  ratios: BenchRatio[];
}

/** One benchmark: a file bench/NAME.bench.ts whose default export is this. */
export interface Benchmark {
  name: string;
  description: string;
  run(): Promise<BenchResult>;
}
