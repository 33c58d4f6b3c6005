import { describe, expect, it } from 'vitest';
import { ChatCompletionResponse, InferenceServiceService } from '../../../src/gen/flockserve/v1/inference.js';
import { encoderOf, passEncoded } from '../../../src/service/grpc-encoded.js';

const message = ChatCompletionResponse.fromPartial({
  id: 'c',
  object: 'chat.completion.chunk',
  model: 'sim',
  choices: [{ index: 0, delta: { content: { $case: 'text', value: 'tok ' } } }],
});

describe('Encoded responses', () => {
  const method = passEncoded(InferenceServiceService).chatCompletion;

  it('a message encoded ahead goes on the wire as the generated serializer writes the message', () => {
    const encoded = encoderOf(InferenceServiceService.chatCompletion)(message);
    const wire = method.responseSerialize(encoded as never);
    expect(wire).toBe(encoded);
    expect(wire).toEqual(InferenceServiceService.chatCompletion.responseSerialize(message));
    expect(ChatCompletionResponse.decode(wire)).toEqual(message);
  });

  it('a message object is still serialized', () => {
    expect(method.responseSerialize(message)).toEqual(
      InferenceServiceService.chatCompletion.responseSerialize(message),
    );
  });

  it('request decoding is left as it is', () => {
    expect(method.requestDeserialize).toBe(InferenceServiceService.chatCompletion.requestDeserialize);
  });
});
