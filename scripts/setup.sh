#!/usr/bin/env bash
# Installs what pyengine needs on a fresh Debian machine (root): system packages and the
# package itself (editable, with test extras). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in busybox-static procps iproute2 nftables gcc libc6-dev python3-dev debootstrap docker-compose docker-registry skopeo apache2-utils; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# compat: a plain path in a .pth; the default editable mode installs an import-hook finder
# that every Python process imports at start-up (~9 ms of each `pyengine` command)
python3 -m pip install -q --disable-pip-version-check -e '.[test]' \
  --config-settings editable_mode=compat 2>&1 | grep -v -E '^(WARNING|  )' || true
python3 -c 'import engine._native' # the cffi extension must have been built
