#!/bin/sh
# Runs the client examples (TypeScript and Python) against a live gateway; CI calls it after
# starting one. Fails if an example fails or prints something other than what it should.
#
#   FLOCKSERVE_NODE_CONTROL_KEY=... clients/run-examples.sh HOST:GRPC_PORT
#
# Needs the package built (npm run build). Python: $PYTHON (default /usr/bin/python3, where
# Debian's python3-grpcio installs) with grpcio and protobuf; when protoc and
# grpc_python_plugin are on PATH the stubs are regenerated first and must match the committed ones.
set -eu
address=${1:?usage: clients/run-examples.sh HOST:GRPC_PORT}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-/usr/bin/python3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# expect NAME PATTERN COMMAND...: runs COMMAND, shows its output, and requires PATTERN in it.
expect() {
  name=$1
  pattern=$2
  shift 2
  echo "== $name"
  if ! "$@" >"$out" 2>&1; then
    cat "$out"
    echo "FAILED: $name exited non-zero" >&2
    exit 1
  fi
  cat "$out"
  if ! grep -Eq "$pattern" "$out"; then
    echo "FAILED: $name did not print /$pattern/" >&2
    exit 1
  fi
}

[ -f dist/client/index.js ] || { echo "run-examples.sh: build first (npm run build)" >&2; exit 1; }
npx tsc -p clients/typescript
expect "typescript list-workers" '^[0-9]+ workers$' node clients/typescript/dist/examples/list-workers.js "$address"
expect "typescript chat-stream" '^\[finish_reason: [a-z]+\]$' node clients/typescript/dist/examples/chat-stream.js "$address"

if command -v protoc >/dev/null 2>&1 && command -v grpc_python_plugin >/dev/null 2>&1; then
  clients/python/generate.sh
  if git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --exit-code --stat -- clients/python/gen; then
    echo "FAILED: clients/python/gen differs from what generate.sh makes: regenerate and commit" >&2
    exit 1
  fi
else
  echo "== protoc or grpc_python_plugin not found: using the committed Python stubs"
fi
expect "python example" '\[finish_reason: [a-z]+\]' "$python" clients/python/example.py "$address"
echo "all client examples passed"
