// Types of sections.mjs, for the benches written in TypeScript.
export function writeSection(path: string, name: string, markdown: string): void;
export function readSection(path: string, name: string): string;
