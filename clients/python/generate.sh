#!/bin/sh
# Regenerates the Python gRPC stubs in clients/python/gen/ from proto/flockserve/v1/*.proto.
# Needs protoc and the gRPC Python plugin, e.g. on Debian/Ubuntu:
#   apt-get install -y protobuf-compiler protobuf-compiler-grpc
# (or set PROTOC / GRPC_PYTHON_PLUGIN). The output is committed; CI regenerates it and checks
# that nothing changed (clients/run-examples.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$here/gen"
protoc=${PROTOC:-protoc}
plugin=${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || true)}
if [ -z "$plugin" ]; then
  echo "generate.sh: grpc_python_plugin not found (apt-get install protobuf-compiler-grpc, or set GRPC_PYTHON_PLUGIN)" >&2
  exit 1
fi
rm -rf "$out/flockserve"
mkdir -p "$out"
# google/protobuf/struct.proto comes with protoc (/usr/include on Debian).
"$protoc" -I "$root/proto" \
  --python_out="$out" \
  --grpc_out="$out" --plugin=protoc-gen-grpc="$plugin" \
  "$root"/proto/flockserve/v1/*.proto
echo "generated $(find "$out/flockserve" -name '*.py' | wc -l) modules in $out/flockserve/v1 with $("$protoc" --version)"
