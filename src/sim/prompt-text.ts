/** How the engine simulator reads a prompt's text from chat messages (chat completions, Responses API turns). */
import { asRecord } from './http-util.js';

/** A message's text: its content string, or its parts' texts joined (parts without text, such as images, add none). */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (typeof asRecord(part)?.text === 'string' ? (asRecord(part)!.text as string) : ''))
      .join('');
  }
  return '';
}

/** A chat request's prompt as the simulator reads it: the messages' text, one per line. */
export function chatPromptText(messages: readonly unknown[]): string {
  return messages.map((m) => messageText(asRecord(m)?.content)).join('\n');
}
