/** Small node:http helpers for the engine simulator: JSON answers, the engines' error shapes, body reading. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * vLLM's OpenAI-server error body: `{"object":"error","message":..,"type":..,"param":..,"code":status}`;
 * `param` names the request field at fault where vLLM names one (the Responses API's response_id).
 */
export function sendVllmError(
  res: ServerResponse,
  status: number,
  message: string,
  type: string,
  param: string | null = null,
): void {
  sendJson(res, status, { object: 'error', message, type, param, code: status });
}

/** TGI's error body: `{"error": "...", "error_type": "validation" | "generation" | "overloaded" | ...}`. */
export function sendTgiError(res: ServerResponse, status: number, message: string, errorType: string): void {
  sendJson(res, status, { error: message, error_type: errorType });
}

export class BodyTooLargeError extends Error {}

/** Reads the whole body as text; rejects with BodyTooLargeError past `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLargeError(`request body larger than ${limit} bytes`));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A plain object or undefined: the body a route can read fields from. */
export function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
