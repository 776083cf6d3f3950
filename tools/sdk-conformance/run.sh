#!/usr/bin/env bash
# SDK conformance check: Microsoft's own Python libraries (MSAL, azure-identity, msgraph-sdk,
# msgraph-core) against graph-emulator over HTTPS. See README.md for what it proves.
#
#   tools/sdk-conformance/run.sh          # reuse the venv if its requirements are unchanged
#   tools/sdk-conformance/run.sh --cold   # rebuild the venv from scratch (what a fresh machine does)
#   GRAPH_EMULATOR=target/debug/graph-emulator tools/sdk-conformance/run.sh
#                                         # use that emulator binary instead of building one
#
# Exits non-zero if any check fails. Everything it writes stays under target/sdk-conformance/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tools/sdk-conformance"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/sdk-conformance"
venv="$out/venv"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
[ -n "$python" ] || { echo "sdk-conformance: no python3 found (set PYTHON)" >&2; exit 2; }

started=$SECONDS
if [ "${1:-}" = "--cold" ]; then
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  echo "== creating $venv ($("$python" --version)) and installing the pinned SDKs"
  rm -rf "$venv"
  mkdir -p "$out"
  "$python" -m venv "$venv"
  # --no-compile: msgraph-sdk ships thousands of generated modules and the check imports a few
  # dozen; byte-compiling them all at install time is most of a cold run's install time.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
    -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi

installed=$SECONDS
emulator="${GRAPH_EMULATOR:-}"
if [ -n "$emulator" ]; then
  [ -x "$emulator" ] || { echo "sdk-conformance: GRAPH_EMULATOR=$emulator is not an executable" >&2; exit 2; }
  echo "== using $emulator"
else
  echo "== building graph-emulator"
  (cd "$root" && cargo build --quiet --locked -p graph-emulator --bin graph-emulator)
  emulator="$target/debug/graph-emulator"
fi

built=$SECONDS
echo "== running the checks"
rm -rf "$out/work"
status=0
"$venv/bin/python" "$here/check.py" --emulator "$emulator" --workdir "$out/work" || status=$?
echo "== sdk-conformance: venv $((installed - started)) s, build $((built - installed)) s, checks $((SECONDS - built)) s"
exit "$status"
