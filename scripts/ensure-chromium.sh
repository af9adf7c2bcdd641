#!/usr/bin/env bash
# The browser tests drive Chromium with playwright-core; playwright's own browser
# download cannot work on a closed network, so a system Chromium is used:
# CHROMIUM_PATH when set, else chromium (or chromium-browser) on PATH, else
# Debian's package when this is a Debian-like machine and we are root. Otherwise
# one line says what to install. test/support/chromium.ts finds it the same way.
set -euo pipefail
if [ -n "${CHROMIUM_PATH:-}" ]; then
  if [ -x "$CHROMIUM_PATH" ]; then exit 0; fi
  echo "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file: point it at a Chromium or Chrome binary" >&2
  exit 1
fi
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the browser tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  exit 0
fi
echo "the browser tests need Chromium: install it (Debian/Ubuntu: sudo apt-get install chromium; Fedora: sudo dnf install chromium) or set CHROMIUM_PATH to a Chromium or Chrome binary" >&2
exit 1
