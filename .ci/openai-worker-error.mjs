// The official OpenAI client against an error a worker sends (the quick start's simulator, as
// vLLM, refuses a request longer than its context): the client must see the gateway's
// OpenAI-shaped error with the worker's message inside, its status, and a request id.
import OpenAI from 'openai';

const baseURL = process.argv[2] ?? 'http://localhost:8080/v1';
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
try {
  await client.chat.completions.create({
    model: 'sim',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 100_000_000,
  });
  console.error('openai client: a request past the context length was answered');
  process.exit(1);
} catch (err) {
  const ok =
    err instanceof OpenAI.APIError &&
    err.status === 400 &&
    /maximum context length/.test(err.message) &&
    typeof err.requestID === 'string' &&
    err.requestID.length > 0;
  if (!ok) {
    console.error('openai client: unexpected error', err);
    process.exit(1);
  }
  console.log(
    `openai client: worker error seen as ${err.status} ${err.code ?? ''} "${err.message}" (request id ${err.requestID})`,
  );
}
