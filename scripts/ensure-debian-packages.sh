#!/usr/bin/env bash
# The real programs some tests and the bench run beside the function: nginx (the
# edge cache in front of the replicas) and GlusterFS (a network volume mounted
# twice). Each argument is COMMAND:PACKAGE; a package is installed from Debian when
# its command is missing, we are root and apt-get is here (CI: .ci/run runs as
# root), all in one apt-get call. apt-get update runs only when a package is
# unknown to apt's lists, so a machine whose lists are current (or that
# ensure-chromium.sh just updated) pays for no second update. Otherwise one line
# says what is missing and it exits 0: the tests that need it say so and are
# skipped (test/support/skip.ts), or fail under CI=true.
#   bash scripts/ensure-debian-packages.sh nginx:nginx glusterd:glusterfs-server mount.glusterfs:glusterfs-client
set -euo pipefail
PATH="$PATH:/usr/sbin:/sbin"
missing=()
for pair in "$@"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "not installed: ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]}); the tests that need them are skipped" >&2
  exit 0
fi
for package in "${missing[@]}"; do
  if ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq
    break
  fi
done
echo "installing Debian's ${missing[*]}" >&2
# policy-rc.d or no systemd: the packages' services are not started; the tests start their own.
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
