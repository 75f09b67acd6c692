#!/usr/bin/env bash
# Install the test extras and run the whole suite (what the README and CI run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/ruff check facecloud tests bench scripts
.venv/bin/ruff format --check facecloud tests bench scripts
exec .venv/bin/pytest "$@"
