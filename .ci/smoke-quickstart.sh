#!/usr/bin/env bash
# Runs the README's quick start (`npm start`), sends the README's curl request, then stops it
# with SIGTERM and checks that it exits cleanly and leaves no worker process behind.
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
