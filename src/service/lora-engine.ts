import type { CancelSignal } from '../core/cancellation.js';
import type { Worker } from '../core/types.js';
import type { AdapterRequest } from '../routes/rules.js';
import { readAll } from '../upstream/body-stream.js';
import type { Headers, Upstream } from '../upstream/types.js';

/** The model list an engine serves: vLLM's (and OpenAI's) GET /v1/models. */
const MODELS_PATH = '/v1/models';

/** Where a call goes: a worker, or an engine known by its URL alone (a readiness probe's). */
export type EngineAddress = Pick<Worker, 'name' | 'url'>;

/** An engine's answer, read whole (the LoRA API answers a line of text or a short JSON). */
export interface EngineAnswer<W extends EngineAddress = EngineAddress> {
  readonly worker: W;
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

/**
 * Talking to one engine's run-time LoRA API as vLLM serves it: a change sent as it came, the
 * model list (each adapter by name, with the path it was loaded from as `root`), and whether the
 * engine already holds what a change asks.
 */
export class LoraEngines {
  readonly #upstream: Upstream;

  constructor(upstream: Upstream) {
    this.#upstream = upstream;
  }

  /** One request, its answer read whole. */
  async send<W extends EngineAddress>(
    worker: W,
    path: string,
    headers: Headers,
    body: Buffer | undefined,
    signal: CancelSignal,
    method = 'POST',
  ): Promise<EngineAnswer<W>> {
    const res = await this.#upstream.send(worker.url ?? '', {
      method,
      path,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body,
      signal,
      worker: worker.name,
    });
    return { worker, status: res.status, headers: res.headers, body: await readAll(res.body) };
  }

  /** A change a sync cannot go on without: an answer other than 2xx fails it. */
  async expect(
    worker: EngineAddress,
    path: string,
    headers: Headers,
    body: string,
    signal: CancelSignal,
  ): Promise<void> {
    const a = await this.send(worker, path, headers, Buffer.from(body), signal);
    if (a.status >= 300) throw new Error(`${path} answered ${a.status}: ${a.body.toString('utf8').slice(0, 300)}`);
  }

  /** The model ids the engine lists (the base model and each adapter), each with its `root` where it has one. */
  async modelList(
    worker: EngineAddress,
    headers: Headers,
    signal: CancelSignal,
  ): Promise<Map<string, string | undefined>> {
    const listed = await this.send(worker, MODELS_PATH, engineKey(headers), undefined, signal, 'GET');
    if (listed.status !== 200) throw new Error(`GET ${MODELS_PATH} answered ${listed.status}`);
    const parsed = JSON.parse(listed.body.toString('utf8')) as { data?: unknown };
    if (!Array.isArray(parsed.data)) throw new Error(`GET ${MODELS_PATH} answered without a data list`);
    const ids = new Map<string, string | undefined>();
    for (const m of parsed.data) {
      const card = m as { id?: unknown; root?: unknown } | null;
      if (typeof card?.id === 'string') ids.set(card.id, typeof card.root === 'string' ? card.root : undefined);
    }
    return ids;
  }

  /**
   * Whether the engine already holds what `request` asks: the adapter listed from its path (a
   * load), or not listed (an unload). False when the engine cannot say.
   */
  async holds(
    worker: EngineAddress,
    request: AdapterRequest,
    headers: Headers,
    signal: CancelSignal,
  ): Promise<boolean> {
    try {
      const listed = await this.modelList(worker, headers, signal);
      if (request.kind === 'unload') return !listed.has(request.name);
      const root = listed.get(request.name);
      return listed.has(request.name) && (root === undefined || request.path === undefined || root === request.path);
    } catch {
      return false;
    }
  }
}

/** The engine's key, the one header a model list or an undo needs. */
export function engineKey(headers: Readonly<Record<string, string>>): Headers {
  return headers['authorization'] === undefined ? {} : { authorization: headers['authorization'] };
}
