// Types of nofile.mjs, for the benches written in TypeScript.
export function openFileLimit(): number;
export function withOpenFileLimit(want: number, main: () => unknown): Promise<unknown>;
