#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time,
// and self time by file (our modules, or the package under node_modules, or node's internals).
//   node bench/cpuprofile-top.mjs FILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
const top = Number(values.top);

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // Self time of a node = its samples × the sample interval; timeDeltas[i] is the gap before sample i.
  const selfUs = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  // Percentages are of busy time: idle samples (waiting in epoll) are left out.
  const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const all = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const total = [...selfUs].filter(([id]) => !idleIds.has(id)).reduce((a, [, us]) => a + us, 0);
  const fns = new Map();
  const files = new Map();
  const where = (url) => {
    if (!url) return '(native / V8)';
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (nm) return nm[1];
    if (url.startsWith('node:')) return url;
    return url.replace(/^file:\/\/.*?\/dist\//, 'dist/');
  };
  for (const [id, us] of selfUs) {
    if (idleIds.has(id)) continue;
    const n = byId.get(id);
    const cf = n.callFrame;
    const key = `${cf.functionName || '(anonymous)'}  ${where(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const f = ['(idle)', '(program)', '(garbage collector)'].includes(cf.functionName)
      ? cf.functionName
      : where(cf.url);
    files.set(f, (files.get(f) ?? 0) + us);
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  console.log(
    `## ${file}\n\n${(all / 1e6).toFixed(2)} s sampled, ${(total / 1e6).toFixed(2)} s busy (percentages are of busy time)\n\nTop functions by self time:\n`,
  );
  for (const [k, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);
  console.log('\nSelf time by module:\n');
  for (const [k, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);
  console.log();
}
