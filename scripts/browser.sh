#!/usr/bin/env bash
# Installs (when missing) Debian's chromium, which the console's browser tests drive through
# Playwright. Idempotent: a machine that has it starts at once. Prints the browser's path.
# BATCHLINE_CHROMIUM names another Chromium instead (then nothing is installed).
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -n "${BATCHLINE_CHROMIUM:-}" ]; then
  echo "$BATCHLINE_CHROMIUM"
  exit 0
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "browser: installing chromium from Debian's packages" >&2
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi
command -v chromium
