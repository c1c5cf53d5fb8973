#!/usr/bin/env bash
# The test command: install what the tests need, then run them (as root: real namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pytest -q -p no:cacheprovider "$@"
