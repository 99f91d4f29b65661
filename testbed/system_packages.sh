#!/usr/bin/env bash
# The system packages the test suite drives, installed from Debian's archive where they are missing:
# PostgreSQL's server binaries (a throwaway database), headless Chromium (the browser test), and Slurm with
# munge (a one-machine Slurm). Without root or apt it says in one line what to install, and fails.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || missing+=(munge)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "make test: the tests need ${missing[*]} (Debian packages); install them as root (apt-get install ${missing[*]}) and run again" >&2
  exit 1
fi
echo "make test: installing ${missing[*]} from Debian's archive" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
