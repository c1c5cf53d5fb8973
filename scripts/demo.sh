#!/usr/bin/env bash
# The main job: install, start pyengined on its defaults, make a base image, run a container.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
sock=/run/pyengine/pyengine.sock
if ! pyengine version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup pyengined >/var/log/pyengined.log 2>&1 &
  for _ in $(seq 100); do [ -S "$sock" ] && pyengine version >/dev/null 2>&1 && break; sleep 0.1; done
fi
pyengine bootstrap busybox
pyengine run --rm busybox echo hello from a pyengine container
echo "pyengined is running (log: /var/log/pyengined.log); try: pyengine run -it --rm busybox sh"
