// Types of wrk.mjs for the TypeScript benchmarks (bench/*.ts).
export function wrk(o: {
  dir: string;
  url: string;
  body: string;
  connections: number;
  seconds: number;
  threads?: number;
}): Promise<{ rps: number; p50: number; p99: number; errors: number; raw: string }>;
