/**
 * The prompt text of a request body, for prefix-affinity routing: every message's text
 * content in order (the whole history, not only the first message), or a completion's
 * prompt, or TGI's inputs. Undefined when the body has none.
 */
export function promptTextOf(body: Record<string, unknown>): string | undefined {
  const messages = body['messages'];
  if (Array.isArray(messages)) {
    let text = '';
    for (const m of messages) {
      if (typeof m !== 'object' || m === null) continue;
      const content = (m as Record<string, unknown>)['content'];
      if (typeof content === 'string') text += content + '\n';
      else if (Array.isArray(content))
        for (const part of content) {
          const t = (part as Record<string, unknown> | null)?.['text'];
          if (typeof t === 'string') text += t + '\n';
        }
    }
    return text;
  }
  const prompt = body['prompt'] ?? body['inputs'];
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && typeof prompt[0] === 'string') return prompt.join('\n');
  return undefined;
}
