#!/usr/bin/env bash
# Installs those of the Debian packages named on the command line that are missing:
# with apt-get as root, or through sudo. Without either it prints the one
# `apt-get install` line that is needed and exits 1. Usage: need-debs.sh PKG...
set -euo pipefail

missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install --no-install-recommends ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo > /dev/null && { [ -t 0 ] || sudo -n true 2> /dev/null; }; then
  as_root=(sudo)
else
  echo "Missing Debian packages: ${missing[*]}. As root, run:" >&2
  echo "  $line" >&2
  exit 1
fi
echo "== installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
