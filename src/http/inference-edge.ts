import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, toGatewayError } from '../core/errors.js';
import {
  bodyTellingToStream,
  errorShapeOf,
  mustTellWorkerToStream,
  priorityOf,
  promptTextOf,
  requestIdOf,
  sessionKeyOf,
  wantsStream,
} from '../routes/rules.js';
import { pathOf, PRIORITY_HEADER, REQUEST_ID_HEADER, SESSION_HEADER, STREAM_HEADER } from '../routes/table.js';
import { checkedJson, checkedRoutes, parseJson, withoutByteOrderMark, type JsonObject } from '../routes/validation.js';
import type { ApiKeys } from '../service/auth.js';
import type { InferenceService } from '../service/inference.js';
import type { RequestObserver } from '../service/observer.js';
import type { SendTimeout } from '../service/send-timeout.js';
import { answer, recordUntilClose, writeError, type ErrorLog } from './answer.js';
import { decodeRequestBody } from './body-encoding.js';
import type { BodyTimeouts } from './body-timeouts.js';

export interface InferenceEdgeOptions {
  readonly service: InferenceService;
  readonly observer: RequestObserver;
  readonly maxBodySize: number;
  /** Deepest JSON nesting accepted (option max_json_depth). */
  readonly maxJsonDepth: number;
  readonly log?: ErrorLog | undefined;
  /** Cuts bodies that stop arriving (client_body_timeout). */
  readonly bodyTimeouts?: BodyTimeouts<ServerResponse> | undefined;
  /** Cuts answers their clients stop taking (client_send_timeout). */
  readonly sendTimeout?: SendTimeout | undefined;
  /** The keys a client must present (option api_key); none: open. */
  readonly apiKeys?: ApiKeys | undefined;
}

/** Serves the request and returns true when it is an inference call; false leaves it to fastify. */
export type InferenceEdge = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The inference routes (POST to a path of the route table, src/routes), served straight from
 * node:http ahead of fastify, which keeps every other route. These routes are the whole data
 * path, and fastify's request lifecycle (request and reply objects, hook runners, its promise
 * chain) cost them about 14 µs of CPU per request at full load, ~8 %
 * (bench/results/datapath-profile.md). The contract is fastify's, kept: the body limit (413),
 * UTF-8 JSON within the depth limit, the route's JSON schema compiled by ajv and reported in
 * fastify's words (`body must have required property 'messages'`), the error catalogue.
 */
export function inferenceEdge(o: InferenceEdgeOptions): InferenceEdge {
  const routes = checkedRoutes();
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const url = req.url ?? '';
    const path = pathOf(url);
    const check = routes.get(path);
    if (!check) return false;
    const route = check.route;
    const requestId = requestIdOf(headerOf(req, REQUEST_ID_HEADER));
    const record = o.observer.begin({
      transport: 'http',
      method: 'POST',
      route: path,
      headers: req.headers,
      requestId,
    });
    let raw: Buffer | undefined;
    let body: JsonObject | undefined;
    const abort = recordUntilClose(record, res, () => ({
      user: typeof body?.['user'] === 'string' ? body['user'] : undefined,
      model: typeof body?.['model'] === 'string' ? body['model'] : undefined,
      requestBody: raw,
    }));
    const serve = (read: Buffer, headers: IncomingHttpHeaders): void => {
      const bytes = withoutByteOrderMark(read);
      raw = bytes;
      let priority: number;
      let parsed: unknown;
      try {
        parsed = parseJson(bytes, o.maxJsonDepth);
        body = checkedJson(parsed, check);
        priority = priorityOf(headerOf(req, PRIORITY_HEADER));
      } catch (e) {
        writeError(res, toGatewayError(e), requestId, o.log, errorShapeOf(route, parsed));
        return;
      }
      const stream = wantsStream(route, body, headerOf(req, STREAM_HEADER));
      const forwarded = mustTellWorkerToStream(route, body, stream) ? bodyTellingToStream(bytes, body) : bytes;
      void answer(
        o.service,
        res,
        {
          method: 'POST',
          url,
          headers,
          body: forwarded,
          record,
          requestId,
          abort,
          sendTimeout: o.sendTimeout,
          errorShape: route.api,
          gatewayErrorShape: errorShapeOf(route, body),
          sessionKey: sessionKeyOf(body, headerOf(req, SESSION_HEADER)),
          priority,
          promptText: o.service.readsPrompt ? promptTextOf(body, route) : undefined,
        },
        o.log,
      );
    };
    // Checked before the body is read: a client without a key costs no more than its head.
    const refused = o.apiKeys?.refusal(headerOf(req, 'authorization'));
    if (refused) {
      writeError(res, refused, requestId, o.log, route.api);
      return true;
    }
    const watch = o.bodyTimeouts?.watch(res);
    readBody(req, o.maxBodySize, (read) => {
      o.bodyTimeouts?.stop(watch);
      if (read instanceof GatewayError) {
        writeError(res, read, requestId, o.log, route.api);
        return;
      }
      const encoding = headerOf(req, 'content-encoding');
      if (encoding === undefined) {
        serve(read, req.headers);
        return;
      }
      // A compressed body is served decoded, and the worker is not told it was compressed.
      decodeRequestBody(read, encoding, o.maxBodySize, (decoded) => {
        if (decoded instanceof GatewayError) writeError(res, decoded, requestId, o.log, route.api);
        else serve(decoded, { ...req.headers, 'content-encoding': undefined });
      });
    });
    return true;
  };
}

/**
 * Reads the whole body, up to `limit` bytes: a larger declared or received body is a 413 (the
 * rest is left for node to discard), a failed read a 400. The bytes are copied out of the
 * socket's chunks, which the answer outlives.
 */
function readBody(req: IncomingMessage, limit: number, done: (body: Buffer | GatewayError) => void): void {
  if (Number(req.headers['content-length']) > limit) {
    done(new GatewayError('body_too_large'));
    return;
  }
  const chunks: Buffer[] = [];
  let length = 0;
  const finish = (body: Buffer | GatewayError): void => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    done(body);
  };
  const onData = (chunk: Buffer): void => {
    length += chunk.length;
    if (length > limit) finish(new GatewayError('body_too_large'));
    else chunks.push(chunk);
  };
  const onEnd = (): void => finish(Buffer.concat(chunks, length));
  const onError = (err: Error): void =>
    finish(new GatewayError('bad_request', { message: 'The request body could not be read.', cause: err }));
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}
