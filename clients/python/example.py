#!/usr/bin/env python3
"""FlockServe from Python over gRPC: list the workers (NodeControl) and stream a chat
completion (InferenceService).

    [FLOCKSERVE_NODE_CONTROL_KEY=...] python3 clients/python/example.py [address]

address defaults to $FLOCKSERVE_GRPC_ADDRESS, else localhost:8081 (the quick start's
gateway). Listing the workers needs node control, which is off unless the gateway was started
with --node_control_key (npm start -- --node_control_key KEY) and the same key is in
$FLOCKSERVE_NODE_CONTROL_KEY; without it the example says so and goes on to the chat.
Needs grpcio and protobuf (Debian: apt-get install python3-grpcio python3-protobuf).
"""
import os
import sys

# The generated stubs (clients/python/gen, see generate.sh) import each other as flockserve.v1.*.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402
from flockserve.v1 import inference_pb2, inference_pb2_grpc  # noqa: E402
from flockserve.v1 import node_control_pb2, node_control_pb2_grpc  # noqa: E402


# Node control refuses the call: off on the gateway (FAILED_PRECONDITION), or no or a wrong key.
NODE_CONTROL_REFUSED = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAUTHENTICATED)


def list_workers(channel, key):
    control = node_control_pb2_grpc.NodeControlServiceStub(channel)
    metadata = [("authorization", f"Bearer {key}")] if key else []
    try:
        res = control.ListWorkers(node_control_pb2.ListWorkersRequest(), metadata=metadata, timeout=10)
    except grpc.RpcError as err:
        if err.code() not in NODE_CONTROL_REFUSED:
            raise
        print(
            f"(skipping the worker list: {err.details()} Start the gateway with --node_control_key KEY"
            " and set FLOCKSERVE_NODE_CONTROL_KEY=KEY to list the workers.)",
            file=sys.stderr,
        )
        return
    for w in res.workers:
        state = node_control_pb2.WorkerState.Name(w.state).removeprefix("WORKER_STATE_").lower()
        print(f"{w.name}\t{state}\t{w.url or '-'}\t{w.in_flight}/{w.capacity} in flight")
    print(f"{len(res.workers)} workers")


def stream_chat(channel, prompt):
    inference = inference_pb2_grpc.InferenceServiceStub(channel)
    request = inference_pb2.ChatCompletionRequest(
        model=os.environ.get("FLOCKSERVE_MODEL", ""),
        messages=[inference_pb2.ChatMessage(role="user", text=prompt)],
        max_tokens=16,
        stream=True,
    )
    # Parameters the proto does not name travel in `extra` and reach the engine unchanged.
    request.extra.update({"top_k": 20})
    finish = None
    for chunk in inference.ChatCompletion(request, timeout=60):
        for choice in chunk.choices:
            if choice.delta.HasField("text"):
                print(choice.delta.text, end="", flush=True)
            if choice.HasField("finish_reason"):
                finish = choice.finish_reason
    print(f"\n[finish_reason: {finish or 'none'}]")


def main():
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FLOCKSERVE_GRPC_ADDRESS", "localhost:8081")
    with grpc.insecure_channel(address) as channel:
        try:
            list_workers(channel, os.environ.get("FLOCKSERVE_NODE_CONTROL_KEY"))
            stream_chat(channel, sys.argv[2] if len(sys.argv) > 2 else "Tell me about flocks of birds.")
        except grpc.RpcError as err:
            print(f"{err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
