// A results file written by more than one bench: each owns a section between
// `<!-- NAME:start -->` and `<!-- NAME:end -->` markers, which the others leave as it is.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const marked = (name) => new RegExp(`<!-- ${name}:start -->[\\s\\S]*?<!-- ${name}:end -->\\n?`);

/** Writes `markdown` as section `name` of the file at `path`: replaced where it is, else appended. */
export function writeSection(path, name, markdown) {
  const block = `<!-- ${name}:start -->\n${markdown.trimEnd()}\n<!-- ${name}:end -->\n`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const re = marked(name);
  writeFileSync(path, re.test(text) ? text.replace(re, block) : `${text.trimEnd()}\n\n${block}`);
}

/** Section `name` of the file at `path` with its markers, or '' (to carry it over a rewrite). */
export function readSection(path, name) {
  if (!existsSync(path)) return '';
  return marked(name).exec(readFileSync(path, 'utf8'))?.[0] ?? '';
}
