// Types of load.mjs for the TypeScript benchmarks (bench/*.ts).
export function cpuSeconds(pid: number): number;
export function median(xs: readonly number[]): number;
export function percentile(sorted: readonly number[], p: number): number;
