#!/usr/bin/env bash
# CI: every benchmark script in smoke mode (tiny runs, no kraky venv, no
# timing asserted), well under a minute. Needs the project installed
# (pip install -e ".[test]" or ".[bench]"); plots only if matplotlib is there.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" bench/run_all.py --smoke "$@"
