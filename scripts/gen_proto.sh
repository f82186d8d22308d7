#!/usr/bin/env bash
# Generates the Python code for proto/wardprobe/v1/*.proto into wardprobe/v1/.
# Usage: scripts/gen_proto.sh [OUT_DIR]   (default: the repository root)
# The generated files are checked in; tests/test_proto_fresh.py fails when
# they differ from what this script writes.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$here}"
py="${PYTHON:-python}"
grpc_include="$("$py" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"
googleapis_include="$("$py" -c 'import google.rpc, os; print(os.path.dirname(os.path.dirname(google.rpc.__path__[0])))')"
mkdir -p "$out/wardprobe/v1"
PATH="$(dirname "$(command -v "$py")"):$PATH" "$py" -m grpc_tools.protoc \
    -I "$here/proto" -I "$grpc_include" -I "$googleapis_include" \
    --python_out="$out" --pyi_out="$out" \
    --grpc_python_out="$out" --mypy_grpc_out="$out" \
    "$here"/proto/wardprobe/v1/*.proto
touch "$out/wardprobe/v1/__init__.py"
