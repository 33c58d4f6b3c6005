#!/usr/bin/env bash
# Runs the README's quick start (`npm start`), sends the README's curl request, reaches it with
# buf curl (reflection) and flockctl, then stops it with SIGTERM and checks that it exits cleanly
# and leaves no worker process behind.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
setsid npm start >"$log" 2>&1 &
pgid=$!
cleanup() { kill -KILL -- "-$pgid" 2>/dev/null || true; }
trap cleanup EXIT

ready=0
for _ in $(seq 1 600); do
  if curl -sf localhost:8080/ 2>/dev/null | grep -q '"ready_worker_count":2'; then ready=1; break; fi
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "quick start: gateway not ready with 2 workers within 60 s"; cat "$log"; exit 1
fi

answer=$(curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
  -d '{"model":"sim","messages":[{"role":"user","content":"hi"}]}')
echo "$answer" | grep -q '"chat.completion"' || { echo "quick start: unexpected answer: $answer"; cat "$log"; exit 1; }
echo "quick start answered: ${answer:0:120}..."
node .ci/openai-worker-error.mjs http://localhost:8080/v1 || { cat "$log"; exit 1; }

# Standard tools against the quick start, as the README shows them: buf curl with the schema from
# server reflection only (list, then a streamed ChatCompletion and grpc.health.v1 Check), and
# flockctl pointed at the HTTP port by mistake (it must say so and name the gRPC port).
grpc=(npx --no-install buf curl --protocol grpc --http2-prior-knowledge)
methods=$("${grpc[@]}" --list-methods http://localhost:8081)
echo "$methods" | grep -qx 'flockserve.v1.InferenceService/ChatCompletion' ||
  { echo "quick start: buf curl --list-methods: $methods"; exit 1; }
chat=$("${grpc[@]}" -d '{"model":"sim","messages":[{"role":"user","text":"hi"}],"max_tokens":3,"stream":true}' \
  http://localhost:8081/flockserve.v1.InferenceService/ChatCompletion)
[ "$(echo "$chat" | grep -c '"text"')" -ge 4 ] && echo "$chat" | grep -q '"finishReason": "length"' ||
  { echo "quick start: buf curl ChatCompletion: $chat"; exit 1; }
health=$("${grpc[@]}" http://localhost:8081/grpc.health.v1.Health/Check)
echo "$health" | grep -q '"SERVING"' || { echo "quick start: buf curl Health/Check: $health"; exit 1; }
echo "quick start: buf curl listed, streamed ChatCompletion and checked health through reflection"
set +e
wrong_port=$(npx --no-install flockctl --address localhost:8080 status 2>&1)
code=$?
set -e
[ "$code" = 3 ] && echo "$wrong_port" | grep -q "looks like the gateway's HTTP port.*try --address localhost:8081" ||
  { echo "quick start: flockctl at the HTTP port (exit $code): $wrong_port"; exit 1; }
echo "quick start: flockctl at the HTTP port says so (exit 3)"

# The quick start's workers: simulator processes running in this checkout.
workers=""
for pid in $(pgrep -f 'dist/cli/flockserve-sim.js' || true); do
  [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$PWD" ] && workers="$workers $pid"
done
# The gateway is done when nothing of `npm start`'s session (npm, sh, node) is left running: npm
# itself may exit before the node process it started has torn its workers down. Zombies do not
# count (PID 1 in a container may not reap orphans).
session_running() { ps -o stat= -s "$pgid" 2>/dev/null | grep -qv '^Z'; }
kill -TERM -- "-$pgid"
for _ in $(seq 1 300); do
  session_running || break
  sleep 0.1
done
if session_running; then echo "quick start: still running 30 s after SIGTERM"; cat "$log"; exit 1; fi
for pid in $workers; do
  if kill -0 "$pid" 2>/dev/null; then echo "quick start: worker $pid outlived the gateway"; exit 1; fi
done
echo "quick start: stopped cleanly, $(echo "$workers" | wc -w) worker processes gone"
