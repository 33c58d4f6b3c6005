import { ConfigError } from './config-error.js';
import { OPTIONS, camelName, envName, kebabName, type Config, type OptionName, type OptionSpec } from './options.js';

export { ConfigError } from './config-error.js';

type RawValue = string | number | boolean | readonly string[] | Record<string, unknown>;

const NAMES = Object.keys(OPTIONS) as OptionName[];

/** Converts one raw value (a CLI/env string, or a programmatic value) to the option's type. */
export function coerce(name: OptionName, raw: unknown, source: string): RawValue {
  const spec: OptionSpec = OPTIONS[name];
  const bad = (expected: string): never => {
    throw new ConfigError(`${source}: expected ${expected}, got ${JSON.stringify(raw)}`);
  };
  let value: RawValue;
  switch (spec.type) {
    case 'int':
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) bad(spec.type === 'int' ? 'an integer' : 'a number');
      if (spec.type === 'int' && !Number.isInteger(n)) bad('an integer');
      if (spec.min !== undefined && n < spec.min) bad(`a value >= ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) bad(`a value <= ${spec.max}`);
      value = n;
      break;
    }
    case 'bool':
      if (typeof raw === 'boolean') value = raw;
      else if (raw === 'true' || raw === '1' || raw === '') value = true;
      else if (raw === 'false' || raw === '0') value = false;
      else return bad('true or false');
      break;
    case 'list':
      if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) value = raw as string[];
      else if (typeof raw === 'string')
        value = raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
      else return bad('a comma-separated list');
      if (spec.each && !(value as string[]).every((v) => spec.each!.pattern.test(v))) bad(spec.each.wanted);
      break;
    case 'json': {
      let parsed: unknown = raw;
      if (typeof raw === 'string') {
        try {
          parsed = JSON.parse(raw);
        } catch {
          return bad('a JSON object');
        }
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return bad('a JSON object');
      value = parsed as Record<string, unknown>;
      break;
    }
    case 'string':
      if (typeof raw !== 'string') return bad('a string');
      if (spec.choices && !spec.choices.includes(raw)) bad(`one of ${spec.choices.join(', ')}`);
      value = raw;
      break;
  }
  return value;
}

/**
 * With the static provisioner the listed engines are the fleet: unless the user set them,
 * min_workers and max_workers follow the list's length, so four URLs give four workers. A list
 * longer than an explicit max_workers would leave engines unused without a word: an error, as
 * is no list at all.
 */
function staticFleetBounds(values: Map<OptionName, RawValue>): void {
  if ((values.get('provisioner') ?? OPTIONS.provisioner.default) !== 'static') return;
  const urls = values.get('workers') as readonly string[] | undefined;
  if (!urls || urls.length === 0)
    throw new ConfigError(
      '--provisioner static needs --workers URL[,URL...]: the base URLs of engines that already run',
    );
  const max = values.get('max_workers') as number | undefined;
  if (max === undefined) values.set('max_workers', urls.length);
  else if (max < urls.length) {
    throw new ConfigError(
      `--workers lists ${urls.length} engines but --max_workers is ${max}, so ${urls.length - max} would never be used: raise --max_workers to ${urls.length} or list fewer`,
    );
  }
  if (!values.has('min_workers')) values.set('min_workers', urls.length);
}

function finish(values: Map<OptionName, RawValue>): Config {
  staticFleetBounds(values);
  const out: Record<string, unknown> = {};
  for (const name of NAMES) {
    const spec: OptionSpec = OPTIONS[name];
    const value = values.get(name) ?? spec.default;
    if (value === undefined && spec.required) {
      throw new ConfigError(`--${name} is required (${spec.help})`);
    }
    out[camelName(name)] = value;
  }
  return out as Config;
}

const FLAG_TO_NAME = new Map<string, OptionName>(
  NAMES.flatMap((n) => [
    [`--${n}`, n],
    [`--${kebabName(n)}`, n],
  ]),
);

/**
 * Command line and environment → Config. Precedence: flag > env var > default.
 * Flags take `--name value` or `--name=value`; a bool flag alone means true.
 */
export function resolveArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Config {
  const values = new Map<OptionName, RawValue>();
  for (const name of NAMES) {
    const raw = env[envName(name)];
    if (raw !== undefined) values.set(name, coerce(name, raw, `env ${envName(name)}`));
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const name = FLAG_TO_NAME.get(flag);
    if (!name) {
      throw new ConfigError(
        arg.startsWith('-') ? `unknown option ${flag} (see --help)` : `unexpected argument ${JSON.stringify(arg)}`,
      );
    }
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (
      (OPTIONS[name] as OptionSpec).type === 'bool' &&
      (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))
    )
      raw = '';
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`${flag} needs a value`);
      raw = next;
      i++;
    }
    values.set(name, coerce(name, raw, flag));
  }
  return finish(values);
}

/** Programmatic options (camelCase) → Config, validated exactly as flags are. */
export function resolveOptions(options: Record<string, unknown>): Config {
  const byCamel = new Map<string, OptionName>(NAMES.map((n) => [camelName(n), n]));
  const values = new Map<OptionName, RawValue>();
  for (const [key, raw] of Object.entries(options)) {
    if (raw === undefined) continue;
    const name = byCamel.get(key);
    if (!name) throw new ConfigError(`unknown option ${key}`);
    values.set(name, coerce(name, raw, key));
  }
  return finish(values);
}

/** `--help` text, one block per option, from the table. */
export function helpText(program: string, summary: string): string {
  const lines = [`Usage: ${program} --skypilot_task TASK.yaml [options]`, '', summary, '', 'Options:'];
  for (const name of NAMES) {
    const spec: OptionSpec = OPTIONS[name];
    const def = spec.required ? 'required' : `default: ${formatDefault(spec.default)}`;
    const choices = spec.choices ? `; one of ${spec.choices.join(', ')}` : '';
    lines.push(`  --${name} <${spec.type}>  (${def}${choices}; env ${envName(name)})`, `      ${spec.help}`);
  }
  return lines.join('\n');
}

export function formatDefault(value: OptionSpec['default']): string {
  if (value === undefined) return 'unset';
  if (Array.isArray(value)) return value.length ? value.join(',') : 'none';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** The README's arguments table, generated so a test can keep the two in step. */
export function markdownTable(): string {
  const rows = ['| Flag | Env var | Default | Description |', '| --- | --- | --- | --- |'];
  for (const name of NAMES) {
    const spec: OptionSpec = OPTIONS[name];
    const def = spec.required ? '(required)' : `\`${formatDefault(spec.default)}\``;
    const choices = spec.choices ? ` One of: ${spec.choices.map((c) => `\`${c}\``).join(', ')}.` : '';
    rows.push(`| \`--${name}\` | \`${envName(name)}\` | ${def} | ${spec.help.replaceAll('|', '\\|')}${choices} |`);
  }
  return rows.join('\n');
}
