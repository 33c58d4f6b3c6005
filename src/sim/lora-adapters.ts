/**
 * The LoRA adapters one engine simulator serves, kept as vLLM's OpenAIServingModels keeps them
 * (vllm/frontend/entrypoints/openai/models/serving.py, load_lora_adapter and
 * unload_lora_adapter): by name, each with the path it was loaded from and the base model it
 * adapts. No weights are read: an adapter "loads" when its directory holds adapter_config.json,
 * the file vLLM opens first (PEFTHelper.from_local_dir), so a test makes one with a directory
 * and an empty config.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** One `--lora-modules` entry: vLLM's LoRAModulePath (name, path, base_model_name). */
export interface LoraModule {
  readonly name: string;
  readonly path: string;
  readonly baseModelName?: string;
}

export interface LoadedAdapter {
  readonly name: string;
  /** As the load named it; /v1/models answers it as the card's `root`. */
  readonly path: string;
  /** vLLM's lora_int_id: 1, 2, … in load order; a reload in place keeps its number. */
  readonly intId: number;
  /** The card's `parent`: the base model named at load when it is the served one, else the served one. */
  readonly parent: string;
}

/** A failed load or unload: what vLLM's ErrorResponse carries. */
export interface LoraError {
  readonly status: number;
  readonly type: string;
  readonly message: string;
}

/** The engine's answer to add_lora when the server started without --enable-lora (its worker has no LoRA manager). */
export const LORA_NOT_ENABLED = 'Call to add_lora method failed: LoRA is not enabled.';

/** Python's strerror of the errors open() raises on a path that is not a readable file. */
const PYTHON_ERRNO: Readonly<Record<string, readonly [number, string]>> = {
  ENOTDIR: [20, 'Not a directory'],
  EISDIR: [21, 'Is a directory'],
  EACCES: [13, 'Permission denied'],
};

/**
 * Why vLLM's worker would fail to load the adapter at `path`, or undefined when it loads: it
 * opens `<path>/adapter_config.json`; a missing file (FileNotFoundError) is vLLM's
 * LoRAAdapterNotFoundError, a 404; any other OSError (the path is a file, the config a
 * directory) travels back from the engine as a 500 with its text.
 */
function loadFailure(name: string, path: string): LoraError | undefined {
  // vLLM's get_adapter_absolute_path: absolute paths as given, `~` expanded, others from the working directory.
  const local = isAbsolute(path) ? path : path.startsWith('~') ? homedir() + path.slice(1) : resolve(path);
  const config = join(local, 'adapter_config.json');
  try {
    readFileSync(config);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOENT') {
      return {
        status: 404,
        type: 'NotFoundError',
        message: `Loading lora ${name} failed: No adapter found for ${path}`,
      };
    }
    const [errno, text] = PYTHON_ERRNO[code] ?? [0, code];
    return {
      status: 500,
      type: 'InternalServerError',
      message: `Call to add_lora method failed: [Errno ${errno}] ${text}: '${config}'`,
    };
  }
}

export class LoraAdapters {
  readonly #byName = new Map<string, LoadedAdapter>();
  #lastId = 0;

  /**
   * @param baseModel the served model name, every adapter's default parent
   * @param enabled vLLM's --enable-lora: without it the engine refuses every adapter
   */
  constructor(
    readonly baseModel: string,
    readonly enabled: boolean,
  ) {}

  /**
   * The registry with `modules` loaded, as vLLM's init_static_loras loads --lora-modules at
   * start; throws with the load's message when one fails (vLLM does not start then).
   */
  static atStart(baseModel: string, enabled: boolean, modules: readonly LoraModule[]): LoraAdapters {
    const adapters = new LoraAdapters(baseModel, enabled);
    for (const m of modules) {
      const failed = adapters.load(m.name, m.path, { baseModelName: m.baseModelName });
      if (typeof failed !== 'string') throw new Error(failed.message);
    }
    return adapters;
  }

  get(name: string): LoadedAdapter | undefined {
    return this.#byName.get(name);
  }

  /** Loaded adapters in load order (a reload in place keeps its place), as /v1/models lists them. */
  list(): readonly LoadedAdapter[] {
    return [...this.#byName.values()];
  }

  /**
   * vLLM's load_lora_adapter: both fields non-empty (400), a name not loaded yet unless
   * `loadInplace` (400), then the engine's load (404 when no adapter is there; 500 without
   * --enable-lora). Returns vLLM's success text, or the error.
   */
  load(
    name: string,
    path: string,
    opts: { readonly loadInplace?: boolean; readonly baseModelName?: string | undefined } = {},
  ): string | LoraError {
    if (name === '' || path === '') {
      return { status: 400, type: 'InvalidUserInput', message: "Both 'lora_name' and 'lora_path' must be provided." };
    }
    const existing = this.#byName.get(name);
    if (existing && !opts.loadInplace) {
      return {
        status: 400,
        type: 'InvalidUserInput',
        message: `The lora adapter '${name}' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.`,
      };
    }
    // vLLM draws the next id before the engine's load, so a failed load uses one up too.
    const intId = existing?.intId ?? ++this.#lastId;
    if (!this.enabled) return { status: 500, type: 'InternalServerError', message: LORA_NOT_ENABLED };
    const failed = loadFailure(name, path);
    if (failed) return failed;
    const parent = opts.baseModelName === this.baseModel ? opts.baseModelName : this.baseModel;
    this.#byName.set(name, { name, path, intId, parent });
    return `Success: LoRA adapter '${name}' added successfully.`;
  }

  /** vLLM's unload_lora_adapter: a non-empty name (400) that is loaded (404). */
  unload(name: string): string | LoraError {
    if (name === '') {
      return {
        status: 400,
        type: 'InvalidUserInput',
        message: "'lora_name' needs to be provided to unload a LoRA adapter.",
      };
    }
    if (!this.#byName.delete(name)) {
      return { status: 404, type: 'NotFoundError', message: `The lora adapter '${name}' cannot be found.` };
    }
    return `Success: LoRA adapter '${name}' removed successfully.`;
  }
}

/**
 * One `--lora-modules` value as vLLM's LoRAParserAction reads it: `name=path` when it holds `=`
 * and no `,`, else a JSON object `{"name", "path", "base_model_name"?, "is_3d_lora_weight"?}`;
 * a string message (vLLM's parser error) when it is neither.
 */
export function parseLoraModule(item: string): LoraModule | string {
  if (item.includes('=') && !item.includes(',')) {
    const parts = item.split('=');
    // Python's `name, path = item.split("=")` fails on a second `=`.
    if (parts.length !== 2) return `--lora-modules: too many values to unpack (expected 2) in ${item}`;
    return { name: parts[0] ?? '', path: parts[1] ?? '' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(item);
  } catch {
    return `Invalid JSON format for --lora-modules: ${item}`;
  }
  const fields = new Set(['name', 'path', 'base_model_name', 'is_3d_lora_weight']);
  const invalid = (why: string) => `Invalid fields for --lora-modules: ${item} - ${why}`;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return invalid('LoRAModulePath() argument after ** must be a mapping');
  }
  const o = parsed as Record<string, unknown>;
  const unknown = Object.keys(o).find((k) => !fields.has(k));
  if (unknown !== undefined)
    return invalid(`LoRAModulePath.__init__() got an unexpected keyword argument '${unknown}'`);
  const missing = ['name', 'path'].filter((k) => !(k in o));
  if (missing.length > 0) {
    return invalid(
      `LoRAModulePath.__init__() missing ${missing.length} required positional argument${missing.length > 1 ? 's' : ''}: ${missing.map((k) => `'${k}'`).join(' and ')}`,
    );
  }
  if (typeof o.name !== 'string' || typeof o.path !== 'string') return invalid('name and path must be strings');
  return typeof o.base_model_name === 'string'
    ? { name: o.name, path: o.path, baseModelName: o.base_model_name }
    : { name: o.name, path: o.path };
}
