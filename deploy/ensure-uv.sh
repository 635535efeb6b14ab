#!/usr/bin/env bash
# Prints the path of a uv binary, installing uv from PyPI into the cache when the machine has none.
set -euo pipefail
if command -v uv >/dev/null 2>&1; then command -v uv; exit 0; fi
cache=${SLIPWAY_CACHE_DIR:-$HOME/.cache/slipway}
if [ ! -x "$cache/uv-venv/bin/uv" ]; then
  mkdir -p "$cache"
  python3 -m venv "$cache/uv-venv" >&2
  "$cache/uv-venv/bin/pip" install --quiet --disable-pip-version-check uv >&2
fi
echo "$cache/uv-venv/bin/uv"
