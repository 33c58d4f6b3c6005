/**
 * Property-based fuzzing of the HTTP adapters (fast-check), shared by the fuzz suite (a few
 * hundred cases) and the reliability bench (thousands). Every property sends one generated
 * request to a running gateway over real HTTP and checks the answer.
 *
 * Bad input must get a 4xx in its route's shape (OpenAI's, `{"error": {"message", "type", "param",
 * "code"}}`; TGI's on TGI's routes, `{"error", "error_type"}`, but OpenAI's for SGLang's body on
 * /generate), never a 5xx, never a dropped connection. Arbitrary JSON (which may well be a valid
 * request) must never get a 5xx.
 */
import fc from 'fast-check';
import { Agent, request as httpRequest } from 'node:http';
import { errorShapeOf } from '../../src/routes/rules.js';
import { checkedRoutes } from '../../src/routes/validation.js';

export interface Answer {
  readonly status: number;
  readonly body: string;
}

export interface FuzzRequest {
  readonly path: string;
  readonly body: Buffer;
}

const agent = new Agent({ keepAlive: true });

/** POSTs raw bytes; resolves with status and body, or `status: 0` when the connection failed. */
export function post(baseUrl: string, req: FuzzRequest): Promise<Answer> {
  return new Promise((resolve) => {
    const r = httpRequest(`${baseUrl}${req.path}`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': req.body.length },
    });
    r.on('error', (err) => resolve({ status: 0, body: `connection failed: ${err.message}` }));
    r.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => resolve({ status: 0, body: `response failed: ${err.message}` }));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    r.end(req.body);
  });
}

/** Throws unless `a` is a 4xx whose body is an OpenAI error object. */
export function expectOpenAI4xx(a: Answer): void {
  if (a.status < 400 || a.status > 499) throw new Error(`expected a 4xx, got ${a.status}: ${a.body.slice(0, 300)}`);
  let json: unknown;
  try {
    json = JSON.parse(a.body);
  } catch {
    throw new Error(`4xx body is not JSON: ${a.body.slice(0, 300)}`);
  }
  const e = (json as { error?: Record<string, unknown> }).error;
  const shaped =
    typeof e === 'object' &&
    e !== null &&
    typeof e['message'] === 'string' &&
    typeof e['type'] === 'string' &&
    typeof e['code'] === 'string' &&
    (e['param'] === null || typeof e['param'] === 'string');
  if (!shaped) throw new Error(`4xx body is not OpenAI-shaped: ${a.body.slice(0, 300)}`);
}

/** Throws unless `a` is a 4xx whose body is TGI's error object. */
function expectTgi4xx(a: Answer): void {
  if (a.status < 400 || a.status > 499) throw new Error(`expected a 4xx, got ${a.status}: ${a.body.slice(0, 300)}`);
  const json = JSON.parse(a.body) as { error?: unknown; error_type?: unknown };
  if (typeof json.error !== 'string' || typeof json.error_type !== 'string')
    throw new Error(`4xx body is not TGI-shaped: ${a.body.slice(0, 300)}`);
}

/** Throws unless `a` is a 4xx in the shape of the route `req` went to, for its body (errorShapeOf). */
export function expectRouteShaped4xx(a: Answer, req: FuzzRequest): void {
  let body: unknown;
  try {
    body = JSON.parse(req.body.toString('utf8'));
  } catch {
    body = undefined;
  }
  const route = checkedRoutes().get(req.path)!.route;
  if (errorShapeOf(route, body) === 'tgi') expectTgi4xx(a);
  else expectOpenAI4xx(a);
}

function expectNo5xx(a: Answer): void {
  if (a.status === 0 || a.status >= 500) throw new Error(`got ${a.status || 'no answer'}: ${a.body.slice(0, 300)}`);
}

const ROUTES = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/generate', '/generate_stream'] as const;
const route = fc.constantFrom(...ROUTES);

/** A valid body per route; properties break it in one way. */
const VALID: Record<(typeof ROUTES)[number], Record<string, unknown>> = {
  '/v1/chat/completions': { model: 'sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 },
  '/v1/completions': { model: 'sim', prompt: 'hi', max_tokens: 1 },
  '/v1/embeddings': { model: 'sim', input: 'hi' },
  '/generate': { inputs: 'hi', parameters: { max_new_tokens: 1 } },
  '/generate_stream': { inputs: 'hi', parameters: { max_new_tokens: 1 } },
};

/** The openai SDKs' `string | null` and `boolean | null`: null is unset. */
const stringOrNull = (v: unknown): boolean => typeof v === 'string' || v === null;
const booleanOrNull = (v: unknown): boolean => typeof v === 'boolean' || v === null;

/** The fields the gateway checks per route, with a predicate for "right type". */
const CHECKED: Record<(typeof ROUTES)[number], Record<string, (v: unknown) => boolean>> = {
  '/v1/chat/completions': {
    messages: (v) => Array.isArray(v) && v.length > 0 && v.every((m) => isObject(m) && 'role' in m),
    model: stringOrNull,
    stream: booleanOrNull,
    user: stringOrNull,
  },
  '/v1/completions': {
    prompt: (v) => typeof v === 'string' || Array.isArray(v),
    model: stringOrNull,
    stream: booleanOrNull,
  },
  '/v1/embeddings': { input: (v) => typeof v === 'string' || Array.isArray(v), model: stringOrNull },
  '/generate': { inputs: (v) => typeof v === 'string', parameters: isObject, stream: (v) => typeof v === 'boolean' },
  '/generate_stream': { inputs: (v) => typeof v === 'string', parameters: isObject },
};

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

/** Any JSON value, kept small. */
const anyJson = fc.jsonValue({ maxDepth: 3 });

export interface Property {
  readonly name: string;
  readonly arbitrary: fc.Arbitrary<FuzzRequest>;
  readonly check: (a: Answer, req: FuzzRequest) => void;
}

/**
 * The fuzz properties. The gateway under test runs with max_body_size 64 KiB and
 * max_json_depth 64 (see FUZZ_GATEWAY).
 */
export const PROPERTIES: readonly Property[] = [
  {
    name: 'random bytes',
    arbitrary: fc.record({ path: route, body: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)) }),
    // Random bytes are almost never JSON; when they are (e.g. "7"), they are not an object.
    check: expectRouteShaped4xx,
  },
  {
    name: 'deep nesting',
    arbitrary: fc.record({
      path: route,
      body: fc
        .tuple(fc.integer({ min: 65, max: 20_000 }), fc.constantFrom('[', '{"a":'), fc.boolean())
        .map(([depth, open, closed]) => {
          const close = open === '[' ? ']' : '}';
          return Buffer.from(open.repeat(depth) + (open === '[' ? '' : '1') + (closed ? close.repeat(depth) : ''));
        }),
    }),
    check: expectRouteShaped4xx,
  },
  {
    name: 'wrong types',
    arbitrary: route.chain((path) =>
      fc
        .tuple(fc.constantFrom(...Object.keys(CHECKED[path])), anyJson)
        .filter(([field, value]) => !CHECKED[path][field]!(value))
        .map(([field, value]) => ({ path, body: json({ ...VALID[path], [field]: value }) })),
    ),
    check: expectRouteShaped4xx,
  },
  {
    name: 'huge strings',
    arbitrary: fc
      .tuple(route, fc.integer({ min: 64 * 1024, max: 1024 * 1024 }), fc.constantFrom('x', 'é', '\\u0000', '"'))
      .map(([path, n, ch]) => {
        const field = Object.keys(CHECKED[path])[0]!;
        return { path, body: Buffer.from(`{"${field}": "${ch.repeat(Math.ceil(n / ch.length))}"}`) };
      }),
    check: expectRouteShaped4xx, // 413
  },
  {
    name: 'invalid UTF-8',
    arbitrary: fc
      .tuple(
        route,
        fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]),
        fc.nat(),
      )
      .map(([path, bad, at]) => {
        const valid = json(VALID[path]);
        const i = at % valid.length;
        return { path, body: Buffer.concat([valid.subarray(0, i), Buffer.from(bad), valid.subarray(i)]) };
      }),
    check: expectRouteShaped4xx,
  },
  {
    name: 'missing fields',
    arbitrary: route.chain((path) =>
      fc.subarray(Object.keys(VALID[path])).map((keep) => {
        const required = Object.keys(CHECKED[path])[0]!;
        const body: Record<string, unknown> = {};
        for (const k of keep) if (k !== required) body[k] = VALID[path][k];
        return { path, body: json(body) };
      }),
    ),
    check: expectRouteShaped4xx,
  },
  {
    name: 'arbitrary JSON (valid or not): never a 5xx',
    arbitrary: fc.record({ path: route, body: anyJson.map(json) }),
    check: expectNo5xx,
  },
];

/** Gateway options the properties assume. */
export const FUZZ_GATEWAY = { maxBodySize: 64 * 1024, maxJsonDepth: 64 } as const;

/** Runs every property `runs` times against the gateway at `baseUrl`; the number of cases run. */
export async function fuzz(baseUrl: string, runs: number, seed?: number): Promise<number> {
  let cases = 0;
  for (const p of PROPERTIES) {
    await fc.assert(
      fc.asyncProperty(p.arbitrary, async (req) => {
        cases++;
        p.check(await post(baseUrl, req), req);
      }),
      { numRuns: runs, ...(seed === undefined ? {} : { seed }) },
    );
  }
  return cases;
}
