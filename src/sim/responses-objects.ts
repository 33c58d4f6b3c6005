/**
 * The objects of vLLM's Responses API as the engine simulator builds them
 * (vllm/entrypoints/openai/responses/protocol.py, ResponsesResponse.from_request): what a
 * request asks, the conversation its input adds to, the response object with its output
 * message and usage. Pure functions: the routes (responses-routes.ts) add ids, time and text.
 */
import type { FinishReason } from './engine-model.js';
import { asRecord } from './http-util.js';
import { messageText } from './prompt-text.js';

/** One turn of a conversation as the simulator reads it: a role and the turn's text. */
export interface ConversationMessage {
  readonly role: string;
  readonly content: string;
}

export interface OutputText {
  readonly type: 'output_text';
  readonly text: string;
  readonly annotations: readonly never[];
  /** null in a whole answer; an empty list in stream events (the simulator gives no logprobs here). */
  readonly logprobs: readonly never[] | null;
}

export interface OutputMessage {
  readonly id: string;
  readonly type: 'message';
  readonly role: 'assistant';
  readonly status: 'in_progress' | 'completed';
  readonly content: readonly OutputText[];
}

export interface ResponseUsage {
  readonly input_tokens: number;
  readonly input_tokens_details: { readonly cached_tokens: number };
  readonly output_tokens: number;
  readonly output_tokens_details: { readonly reasoning_tokens: number };
  readonly total_tokens: number;
}

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete';

/** vLLM's ResponsesResponse, with the values a plain text answer without tools has. */
export interface ResponseObject {
  readonly id: string;
  readonly created_at: number;
  readonly incomplete_details: { readonly reason: 'max_output_tokens' } | null;
  readonly instructions: string | null;
  readonly metadata: Readonly<Record<string, unknown>> | null;
  readonly model: string;
  readonly object: 'response';
  readonly output: readonly OutputMessage[];
  readonly parallel_tool_calls: boolean;
  readonly temperature: number;
  readonly tool_choice: 'auto';
  readonly tools: readonly never[];
  readonly top_p: number;
  readonly background: false;
  readonly max_output_tokens: number;
  readonly max_tool_calls: null;
  readonly previous_response_id: string | null;
  readonly prompt: null;
  readonly reasoning: null;
  readonly service_tier: 'auto';
  readonly status: ResponseStatus;
  readonly text: null;
  readonly top_logprobs: null;
  readonly truncation: 'disabled';
  readonly usage: ResponseUsage | null;
  readonly user: string | null;
}

/** The request fields a response object echoes, read and checked once. */
export interface ResponsesAsk {
  readonly model: string;
  readonly instructions: string | null;
  readonly previousResponseId: string | null;
  readonly maxOutputTokens: number;
  /** vLLM reports the sampling parameters it ran with: the request's, else 1.0 (no generation config). */
  readonly temperature: number;
  readonly topP: number;
  readonly parallelToolCalls: boolean;
  readonly metadata: Readonly<Record<string, unknown>> | null;
  readonly user: string | null;
}

/**
 * A request's `input` as conversation turns: a string is one user turn; a list holds messages
 * `{role, content}` (optionally `type: "message"`), content a string or a list of parts whose
 * texts join (`input_text`, `output_text`). A string message when it is neither, naming the
 * item at fault: the simulator reads no tool-call items.
 */
export function readInput(input: unknown): ConversationMessage[] | string {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input)) return 'input: Field required (a string or a list of input items).';
  const messages: ConversationMessage[] = [];
  for (const [i, raw] of input.entries()) {
    const item = asRecord(raw);
    if (!item) return `input[${i}]: an input item must be an object.`;
    if (item.type !== undefined && item.type !== 'message') {
      return `input[${i}]: the engine simulator reads message items only, got type ${JSON.stringify(item.type)}.`;
    }
    if (typeof item.role !== 'string') return `input[${i}].role: Field required (a string).`;
    if (typeof item.content !== 'string' && !Array.isArray(item.content)) {
      return `input[${i}].content: Field required (a string or a list of content parts).`;
    }
    messages.push({ role: item.role, content: messageText(item.content) });
  }
  return messages;
}

/**
 * The conversation a request runs, as vLLM's construct_input_messages builds it: the request's
 * instructions as a system message, then the previous response's conversation without its
 * system messages (instructions do not carry over), its output as an assistant turn, then the
 * new input. E.g. turn 1 `{instructions: "Be brief", input: "Hi"}` answered "Hello" and turn 2
 * `{instructions: "Be brief", input: "Why?"}` run [system Be brief, user Hi, assistant Hello,
 * user Why?]: turn 1's prompt is a prefix of turn 2's, which the prefix cache of the replica
 * that served turn 1 holds.
 */
export function conversation(
  instructions: string | null,
  previous: { readonly messages: readonly ConversationMessage[]; readonly response: ResponseObject } | undefined,
  input: readonly ConversationMessage[],
): ConversationMessage[] {
  const messages: ConversationMessage[] = [];
  if (instructions) messages.push({ role: 'system', content: instructions });
  if (previous) {
    messages.push(...previous.messages.filter((m) => m.role !== 'system'));
    for (const item of previous.response.output) {
      for (const part of item.content) messages.push({ role: 'assistant', content: part.text });
    }
  }
  messages.push(...input);
  return messages;
}

/** A finished generation's status: vLLM's "incomplete" when it stopped at the length limit. */
export function finishStatus(reason: FinishReason): 'completed' | 'incomplete' {
  return reason === 'length' ? 'incomplete' : 'completed';
}

export function outputText(text: string, logprobs: readonly never[] | null): OutputText {
  return { type: 'output_text', text, annotations: [], logprobs };
}

export function outputMessage(id: string, status: OutputMessage['status'], content: readonly OutputText[]) {
  return { id, type: 'message', role: 'assistant', status, content } satisfies OutputMessage;
}

export function responseUsage(inputTokens: number, outputTokens: number): ResponseUsage {
  return {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + outputTokens,
  };
}

/** The response object in vLLM's field order; `incomplete_details` follows from the status. */
export function responseObject(
  ask: ResponsesAsk,
  head: { readonly id: string; readonly createdAt: number },
  status: ResponseStatus,
  output: readonly OutputMessage[],
  usage: ResponseUsage | null,
): ResponseObject {
  return {
    id: head.id,
    created_at: head.createdAt,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: ask.instructions,
    metadata: ask.metadata,
    model: ask.model,
    object: 'response',
    output,
    parallel_tool_calls: ask.parallelToolCalls,
    temperature: ask.temperature,
    tool_choice: 'auto',
    tools: [],
    top_p: ask.topP,
    background: false,
    max_output_tokens: ask.maxOutputTokens,
    max_tool_calls: null,
    previous_response_id: ask.previousResponseId,
    prompt: null,
    reasoning: null,
    service_tier: 'auto',
    status,
    text: null,
    top_logprobs: null,
    truncation: 'disabled',
    usage,
    user: ask.user,
  };
}
