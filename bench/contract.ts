/**
 * What every benchmark returns; bench/run.ts prints these and writes
 * BENCHMARKS.md. Each figure stands next to a baseline measured in the same
 * run on the same machine, with their ratio.
 */
export interface BenchRow {
  /** What is measured, e.g. "GetToken over gRPC, req/s at 64 in flight". */
  readonly metric: string;
  readonly value: number;
  /** The same figure for the baseline (e.g. a bare grpc-js server); undefined when there is none. */
  readonly baseline?: number;
  /** What the baseline is, e.g. "bare grpc-js server, same message size". */
  readonly baselineName?: string;
  readonly unit: string;
  /** The goal from the issue, e.g. "≥ 0.9× baseline" or "≤ 100 ms"; undefined when none. */
  readonly goal?: string;
  /** Whether the goal was met; undefined when there is no goal. */
  readonly met?: boolean;
}

export interface BenchSection {
  readonly title: string;
  readonly rows: readonly BenchRow[];
  /** How it was measured, and what limits a missed goal. */
  readonly notes: readonly string[];
}

export interface BenchContext {
  /** "full" for `npm run bench`; "smoke" for a seconds-long run that only proves the code works. */
  readonly mode: "full" | "smoke";
  /** Writes a progress line to stderr. */
  log(line: string): void;
}

export type Bench = (ctx: BenchContext) => Promise<BenchSection>;

/** value / baseline, or undefined without a baseline. */
export function ratio(row: BenchRow): number | undefined {
  return row.baseline === undefined || row.baseline === 0 ? undefined : row.value / row.baseline;
}
