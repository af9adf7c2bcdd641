#!/usr/bin/env bash
# The browser tests drive Debian's chromium with playwright-core; playwright's
# own browser download cannot work on a closed network, so the system package is used.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the browser tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "the browser tests need Debian's chromium: sudo apt-get install chromium" >&2
  exit 1
fi
