#!/usr/bin/env node
/**
 * flockserve-sim — an ENGINE SIMULATOR, not a real inference engine. It answers like vLLM's
 * OpenAI-compatible server and like TGI (/generate), with simulated token timing, so FlockServe
 * can be tried and tested without GPUs. See src/sim/server.ts for routes and fault knobs.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_PROFILE, stepBudget, tokenBudgetError } from '../sim/engine-model.js';
import { LORA_NOT_ENABLED, parseLoraModule } from '../sim/lora-adapters.js';
import type { LoraModule } from '../sim/lora-adapters.js';
import { startEngineSimulator } from '../sim/server.js';
import { VERSION } from '../version.js';
import type { EngineSimulator, EngineSimulatorOptions } from '../sim/server.js';

export const HELP = `flockserve-sim — an engine SIMULATOR (not a real inference engine)

Plays vLLM's OpenAI-compatible server and TGI on one HTTP port, with simulated
continuous batching, prefill and decode timing (default profile: vLLM serving
Llama-3.1-8B-Instruct on one A100-80GB). No model runs and no GPU is used.

Usage: flockserve-sim [options]

Options:
  --port N             port (else $FLOCKSERVE_WORKER_PORT, else $PORT, else 8000; 0 = free port)
  --host H             host (else $FLOCKSERVE_WORKER_HOST, else 127.0.0.1)
  --model NAME         served model name (default "sim")
  -h, --help           show this help
  --version            print the version and exit

Simulator test knobs (faults to inject; no real engine has these flags):
  --startup-delay S    /health answers 503 for S seconds (default 0; a huge S: never ready)
  --error-rate F       fraction 0..1 of generation requests answered with an error (default 0)
  --error-status N     HTTP status of those errors (default 500; 502/503 as a proxy answers)
  --crash-after N      serve N generation requests, then exit with code 1 mid-stream of the next
  --hang               accept requests and never answer (except GET /sim/stats)
  --hang-generation    like --hang, but only generation routes hang
  --hang-mid-stream    generation answers go silent after their first token (connection stays open)
  --error-mid-stream   generation answers fail after their first token (vLLM's error event, then [DONE])
  --malformed          generation answers are malformed (cut SSE event / cut JSON)
  --repetitive         the generated text repeats one line, as a model stuck in a loop

Engine options:
  --token-interval MS  fixed time between tokens, ms (overrides the decode profile)
  --max-num-seqs N     most sequences in one batch (default 256)
  --prefill-tps N      prompt tokens prefilled per second (default 10000)
  --kv-cache-tokens N  KV cache capacity in tokens (default 440000): running requests' prompts
                       and outputs, and the prefix cache in what they leave free
  --prefix-cache-tokens N  most prompt tokens the prefix cache keeps (16-token blocks, least
                       recently used evicted first; default and at most the KV cache; 0 = off)
  --offload-cache-tokens N  host-memory tier of the prefix cache (KV offload, as LMCache):
                       blocks leaving the GPU move there, and load back at PCIe speed
                       instead of being recomputed (default 0: none)
  --max-num-batched-tokens N  token budget of one engine step (vLLM's flag; at least
                       --max-num-seqs): decodes first, then prompts in chunks, so a long prefill
                       does not stall running decodes (default 2048, vLLM's OpenAI server's on
                       A100s; 8192 on larger GPUs; 0: none, each prompt prefilled whole in one step)
  --seed N             seed of error draws and generated words (default 0)
  --responses-store    keep Responses API answers in memory for previous_response_id and
                       GET /v1/responses/{id}, as vLLM with VLLM_ENABLE_RESPONSES_API_STORE=1
                       (default: that variable, else off, as vLLM's default)
  --enable-lora        serve LoRA adapters, as vLLM's flag: /v1/models lists them, and a request's
                       "model" must be the served name or a loaded adapter (else vLLM's 404)
  --lora-modules NAME=PATH [NAME=PATH ...]  adapters loaded at start (vLLM's flag and forms,
                       also '{"name": N, "path": P, "base_model_name": B}'); needs --enable-lora.
                       An adapter is a directory holding adapter_config.json (no weights are read)
  --allow-runtime-lora POST /v1/load_lora_adapter and /v1/unload_lora_adapter exist, as vLLM with
                       VLLM_ALLOW_RUNTIME_LORA_UPDATING=true (default: that variable, "1" or
                       "true" in any case, else off: the routes answer 404)

Routes: GET /health, /v1/models, /metrics, /sim/stats (simulator extension);
POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, /generate,
/generate_stream; GET /v1/responses/{id}, POST /v1/responses/{id}/cancel; with runtime LoRA
updating, POST /v1/load_lora_adapter, /v1/unload_lora_adapter.
`;

export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  out(line: string): void;
  err(line: string): void;
  exit(code: number): void;
  /** Installs SIGTERM/SIGINT handlers that close the server and exit 0 (only when run as a process). */
  readonly handleSignals: boolean;
}

const processIo: CliIo = {
  env: process.env,
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  exit: (code) => process.exit(code),
  handleSignals: true,
};

class UsageError extends Error {}

function num(flag: string, v: string | undefined, opts: { integer?: boolean; min?: number; max?: number } = {}) {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} expects ${opts.integer ? 'an integer' : 'a number'}, got "${v}"`);
  }
  if ((opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    throw new UsageError(`--${flag} must be within [${opts.min ?? '-∞'}, ${opts.max ?? '∞'}], got ${n}`);
  }
  return n;
}

/** Parses argv (without node and script) into simulator options; throws UsageError. */
export function parseSimArgs(argv: string[], env: NodeJS.ProcessEnv): EngineSimulatorOptions | 'help' | 'version' {
  const lora = takeLoraModules(argv);
  let values;
  try {
    ({ values } = parseArgs({
      args: lora.rest,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        model: { type: 'string' },
        'startup-delay': { type: 'string' },
        'error-rate': { type: 'string' },
        'error-status': { type: 'string' },
        'hang-mid-stream': { type: 'boolean' },
        'error-mid-stream': { type: 'boolean' },
        malformed: { type: 'boolean' },
        repetitive: { type: 'boolean' },
        'crash-after': { type: 'string' },
        hang: { type: 'boolean' },
        'hang-generation': { type: 'boolean' },
        'token-interval': { type: 'string' },
        'max-num-seqs': { type: 'string' },
        'prefill-tps': { type: 'string' },
        'kv-cache-tokens': { type: 'string' },
        'prefix-cache-tokens': { type: 'string' },
        'offload-cache-tokens': { type: 'string' },
        'max-num-batched-tokens': { type: 'string' },
        seed: { type: 'string' },
        'responses-store': { type: 'boolean' },
        'enable-lora': { type: 'boolean' },
        'allow-runtime-lora': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (lora.modules.length > 0 && values['enable-lora'] !== true) {
    // vLLM starts its engine without LoRA, then fails loading the first module and exits.
    throw new UsageError(`--lora-modules needs --enable-lora (vLLM exits at start: ${LORA_NOT_ENABLED})`);
  }
  const portText = values.port ?? env.FLOCKSERVE_WORKER_PORT ?? env.PORT ?? '8000';
  const startupDelay = num('startup-delay', values['startup-delay'], { min: 0 });
  const maxNumSeqs = num('max-num-seqs', values['max-num-seqs'], { integer: true, min: 1 });
  const prefillTps = num('prefill-tps', values['prefill-tps'], { min: Number.MIN_VALUE });
  const kvCacheTokens = num('kv-cache-tokens', values['kv-cache-tokens'], { integer: true, min: 1 });
  const prefixCacheTokens = num('prefix-cache-tokens', values['prefix-cache-tokens'], { integer: true, min: 0 });
  const offloadCacheTokens = num('offload-cache-tokens', values['offload-cache-tokens'], { integer: true, min: 0 });
  const maxNumBatchedTokens = num('max-num-batched-tokens', values['max-num-batched-tokens'], {
    integer: true,
    min: 0,
  });
  const profile = {
    ...(maxNumSeqs === undefined ? {} : { maxNumSeqs }),
    ...(prefillTps === undefined ? {} : { prefillTokensPerSecond: prefillTps }),
    ...(kvCacheTokens === undefined ? {} : { kvCacheTokens }),
    ...(prefixCacheTokens === undefined ? {} : { prefixCacheTokens }),
    ...(offloadCacheTokens === undefined ? {} : { offloadCacheTokens }),
    ...(maxNumBatchedTokens === undefined ? {} : { maxNumBatchedTokens }),
  };
  // The budget the engine will run with (the default one when none is given), checked as it will check it.
  const budgetError = tokenBudgetError(stepBudget(profile), maxNumSeqs ?? DEFAULT_PROFILE.maxNumSeqs);
  if (budgetError) throw new UsageError(`--${budgetError.replaceAll('_', '-')}`);
  return {
    host: values.host ?? env.FLOCKSERVE_WORKER_HOST ?? '127.0.0.1',
    port: num('port', portText, { integer: true, min: 0, max: 65535 }),
    modelName: values.model ?? 'sim',
    startupDelayMs: startupDelay === undefined ? undefined : startupDelay * 1000,
    errorRate: num('error-rate', values['error-rate'], { min: 0, max: 1 }),
    errorStatus: num('error-status', values['error-status'], { integer: true, min: 400, max: 599 }),
    hangMidStream: values['hang-mid-stream'] === true,
    errorMidStream: values['error-mid-stream'] === true,
    malformed: values.malformed === true,
    repetitive: values.repetitive === true,
    crashAfter: num('crash-after', values['crash-after'], { integer: true, min: 0 }),
    hang: values.hang ? 'all' : values['hang-generation'] ? 'generation' : false,
    tokenIntervalMs: num('token-interval', values['token-interval'], { min: 0 }),
    seed: num('seed', values.seed, { integer: true }),
    responsesStore: values['responses-store'] ?? responsesStoreFromEnv(env),
    enableLora: values['enable-lora'] === true,
    loraModules: lora.modules,
    allowRuntimeLora: values['allow-runtime-lora'] ?? runtimeLoraFromEnv(env),
    profile,
  };
}

/**
 * Takes `--lora-modules` and its values out of argv, read as vLLM's argparse reads them
 * (nargs="+": the values are the words up to the next option; `--lora-modules=V` is one value;
 * a second --lora-modules replaces the first, as its LoRAParserAction sets the list anew).
 */
function takeLoraModules(argv: readonly string[]): { rest: string[]; modules: LoraModule[] } {
  const rest: string[] = [];
  let items: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg.startsWith('--lora-modules=')) {
      items = [arg.slice('--lora-modules='.length)];
    } else if (arg === '--lora-modules') {
      items = [];
      while (i + 1 < argv.length && !(argv[i + 1] ?? '').startsWith('-')) items.push(argv[++i] ?? '');
      if (items.length === 0) throw new UsageError('argument --lora-modules: expected at least one argument');
    } else {
      rest.push(arg);
    }
  }
  const modules: LoraModule[] = [];
  for (const item of items ?? []) {
    if (item === '') continue; // vLLM skips empty values
    const m = parseLoraModule(item);
    if (typeof m === 'string') throw new UsageError(m);
    modules.push(m);
  }
  return { rest, modules };
}

/**
 * vLLM's VLLM_ALLOW_RUNTIME_LORA_UPDATING, read as its envs.py reads it: on when the trimmed
 * value is "1" or "true" in any case; anything else, or unset, is off (never an error).
 */
function runtimeLoraFromEnv(env: NodeJS.ProcessEnv): boolean {
  const v = (env.VLLM_ALLOW_RUNTIME_LORA_UPDATING ?? '0').trim().toLowerCase();
  return v === '1' || v === 'true';
}

/**
 * vLLM's VLLM_ENABLE_RESPONSES_API_STORE, read as vLLM reads it (envs.py: `bool(int(value))`):
 * "1" turns the store on, "0", empty or unset leaves it off; any other text is a usage error, as
 * vLLM fails to start on it.
 */
function responsesStoreFromEnv(env: NodeJS.ProcessEnv): boolean {
  const v = env.VLLM_ENABLE_RESPONSES_API_STORE;
  if (v === undefined || v.trim() === '') return false;
  const n = Number(v);
  if (!Number.isInteger(n)) {
    throw new UsageError(`VLLM_ENABLE_RESPONSES_API_STORE expects an integer (1 or 0), got "${v}"`);
  }
  return n !== 0;
}

/**
 * Runs the simulator CLI. Resolves with the running simulator, or undefined after --help or a
 * usage error (then io.exit(2) has been called).
 */
export async function main(
  argv: string[] = process.argv.slice(2),
  io: CliIo = processIo,
): Promise<EngineSimulator | undefined> {
  let options: EngineSimulatorOptions | 'help' | 'version';
  try {
    options = parseSimArgs(argv, io.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`flockserve-sim: ${e.message}`);
    io.err('Try "flockserve-sim --help".');
    io.exit(2);
    return undefined;
  }
  if (options === 'help') {
    io.out(HELP.trimEnd());
    return undefined;
  }
  if (options === 'version') {
    io.out(VERSION);
    return undefined;
  }
  const sim = await startEngineSimulator({ ...options, onCrash: () => io.exit(1) });
  io.out(`flockserve-sim (engine simulator, not a real engine) listening on ${sim.url}`);
  if (io.handleSignals) {
    const stop = () => {
      void sim.close().then(() => io.exit(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  }
  return sim;
}

function isMain(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  main().catch((e: unknown) => {
    process.stderr.write(`flockserve-sim: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
