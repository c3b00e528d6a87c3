#!/usr/bin/env bash
# The README's two commands on a fresh machine, as a new user meets them: a clean
# Debian 12 root made with debootstrap holding only what a new machine of ours
# has (the Rust toolchain for the host alone, build-essential, git, python3 with
# pip, dbus, systemd), a fresh clone of this repository's HEAD in it, then
# `bash quickstart.sh` and `bash tests/run.sh` run inside with chroot, each timed.
# Nothing of this machine's caches goes in: no cargo registry, no target/, no
# cargo-deb, no rustup targets, no /var/cache/facecaptured-tests.
#
#   bash tests/fresh-machine.sh [DIR] [quickstart|all]
#       (root; DIR default /var/tmp/facecaptured-fresh; default all)
#
# It takes as long as a CI run on a cold machine, plus about 3 minutes for the root;
# `quickstart` stops after the first command (the root and a release build).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/var/tmp/facecaptured-fresh}
root=$dir/root
what=${2:-all}
case "$what" in quickstart | all) ;; *) echo "fresh-machine.sh: quickstart or all, not '$what'" >&2; exit 2 ;; esac
say() { echo "== fresh-machine $(date +%T): $*"; }
[ "$(id -u)" = 0 ] || { echo "fresh-machine.sh: run as root" >&2; exit 1; }

if [ ! -f "$dir/root.complete" ]; then
  say "debootstrap bookworm into $root"
  rm -rf "$root"
  mkdir -p "$dir"
  debootstrap --variant=minbase \
    --include=build-essential,git,python3,python3-pip,dbus,systemd,ca-certificates,procps \
    bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$dir/debootstrap.log" 2>&1
  touch "$dir/root.complete"
fi

# The Rust toolchain, for the host target only, and rustup's proxies (not what
# `cargo install` added to ~/.cargo/bin).
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
toolchain=$(rustup show active-toolchain | cut -d' ' -f1)
host=$(rustc -vV | sed -n 's/^host: //p')
rm -rf "$root/root/.rustup" "$root/root/.cargo" "$root/root/facecaptured"
mkdir -p "$root/root/.rustup/toolchains" "$root/root/.cargo/bin"
cp -a "$rustup_home/settings.toml" "$root/root/.rustup/"
cp -a "$rustup_home/toolchains/$toolchain" "$root/root/.rustup/toolchains/"
for b in "$cargo_bin"/*; do
  cmp -s "$b" "$cargo_bin/rustup" && cp -a "$b" "$root/root/.cargo/bin/"
done
git clone -q "$here" "$root/root/facecaptured"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# This workplace's own trust anchors (its egress proxy), as its new machines have.
if ls /usr/local/share/ca-certificates/*.crt > /dev/null 2>&1; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates > /dev/null
fi

mounts=(proc sys dev dev/pts run tmp)
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "$root/${mounts[i]}" 2> /dev/null || true; done
}
trap cleanup EXIT
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --bind /dev "$root/dev"
mount -t devpts devpts "$root/dev/pts" 2> /dev/null || mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"

in_root() {
  chroot "$root" env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI=true \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /root/facecaptured && $1"
}
# Only the host's standard library, as rustup installs a toolchain.
in_root "rustup target list --installed | grep -vx '$host' | xargs -r rustup target remove"
say "bash quickstart.sh"
start=$(date +%s)
in_root "bash quickstart.sh" > "$dir/quickstart.log" 2>&1 || { tail -40 "$dir/quickstart.log"; exit 1; }
quick=$(($(date +%s) - start))
say "quickstart.sh passed in ${quick} s (log: $dir/quickstart.log)"
[ "$what" = all ] || { echo "fresh machine: quickstart.sh ${quick} s"; exit 0; }
say "bash tests/run.sh"
start=$(date +%s)
in_root "bash tests/run.sh" > "$dir/tests.log" 2>&1 || { tail -60 "$dir/tests.log"; exit 1; }
tests=$(($(date +%s) - start))
say "tests/run.sh passed in ${tests} s (log: $dir/tests.log)"
echo "fresh machine: quickstart.sh ${quick} s, tests/run.sh ${tests} s"
