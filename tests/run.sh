#!/usr/bin/env bash
# All the tests, on a fresh Debian 12 machine of ours (Rust, build-essential, git,
# python3, dbus, systemd): installs what they need when it is missing, then runs
# formatting, lints, `cargo test` with every ignored test included, a short run of
# every fuzz target (tests/fuzz.sh) beside the boards and packages (tests/boards.sh), and
# the installed system booted under qemu, amd64 and an arm64 board side by side
# (tests/system/run.sh). Any test left ignored or skipped is a failure.
#
#   bash tests/run.sh        (as root, or as a user who may sudo apt-get)
#
# What it installs: Debian packages (scripts/need-debs.sh), the rustup targets for
# the boards, cargo-deb, Debian's ARM kernels (tests/vivid/fetch-arm.sh), and the
# Python door controller's jeepney (PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
# One-shot builds: incremental compilation only costs time here.
export CARGO_INCREMENTAL=0
stage() { echo "== $(date +%T) $*"; }
stage "tests/run.sh"

# The C toolchain (ring, SQLite), libclang (the v4l crate's bindgen), unshare (the
# journald test's fallback); for the V4L2 test (vivid-check/tests/vivid.rs) qemu, Debian's kernel
# with vivid, a static busybox, cpio and modinfo; for the daemon tests a private
# dbus-daemon and gdbus; systemd-analyze for the unit. For the boards
# (tests/boards.sh): the cross toolchains, qemu-user, qemu-system-arm, debootstrap.
# For the booted system (tests/system/run.sh): mkfs.ext4 -d and debugfs, and
# swtpm, the software TPM2 the amd64 guest seals its device key with. For the C
# door controller libsystemd-dev (sd-bus); for the interface reference
# (tests/interface-doc.sh) gdbus-codegen, xsltproc, docbook-xsl, man and col;
# for the proxy tests (tests/proxy.rs) tinyproxy; for the metrics test promtool
# (prometheus); for the packages' checks (tests/boards.sh) lintian; for the
# site's hub (tests/site.rs) Debian's nats-server.
packages=(build-essential pkg-config util-linux ca-certificates libclang-dev
          libsystemd-dev libglib2.0-dev-bin xsltproc docbook-xsl man-db bsdextrautils
          qemu-system-x86 linux-image-amd64 busybox-static cpio kmod file
          dbus libglib2.0-bin systemd python3-pip
          gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross
          libc6-dev-armhf-cross qemu-user-static qemu-system-arm debootstrap dpkg-dev
          e2fsprogs swtpm tinyproxy prometheus lintian nats-server iproute2)
bash scripts/need-debs.sh "${packages[@]}"

python3 -c "import jeepney" 2> /dev/null \
  || python3 -m pip install --quiet --user jeepney 2> /dev/null \
  || python3 -m pip install --quiet --user --break-system-packages jeepney

rustup component add rustfmt clippy > /dev/null 2>&1 || true
rustup target add aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
# The packager, without its default features (no bundled liblzma: it uses xz).
command -v cargo-deb > /dev/null \
  || cargo install --locked --quiet --no-default-features cargo-deb --version 3.8.0
if [ "$(id -u)" = 0 ]; then
  bash tests/vivid/fetch-arm.sh
else
  sudo bash tests/vivid/fetch-arm.sh
fi
cargo --version
stage "packages and toolchains ready"

# The booted-system test's Debian roots (debootstrap: downloads and a single-core
# dpkg, 8 min from cold) are made in the background while the builds below run;
# tests/system/root.sh keeps one maker at a time, so a later caller waits for
# them. Their log is printed before the booted-system test; a root that failed
# here is tried again there, in the foreground.
roots_log=$(mktemp)
roots_pid= fuzz_pid= fuzz_log= arm64_pid= arm64_log=
if [ "$(id -u)" = 0 ]; then
  (bash tests/system/root.sh amd64 && bash tests/system/root.sh arm64) > "$roots_log" 2>&1 &
  roots_pid=$!
fi
log=$(mktemp)
trap 'for p in $roots_pid $fuzz_pid $arm64_pid; do kill "$p" 2> /dev/null; done; rm -f "$log" "$roots_log" $fuzz_log $arm64_log' EXIT

# The fuzz crate has a lock file of its own: a dependency added to the product must
# reach it too, and finding that out here costs seconds, not the boards' half hour.
stage "the lock files are current (cargo metadata --locked)"
cargo metadata --locked --format-version 1 > /dev/null
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml > /dev/null

stage "cargo fmt --check"
cargo fmt --check
cargo fmt --check --manifest-path fuzz/Cargo.toml
stage "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

stage "cargo test (ignored tests included)"
cargo test --locked --workspace -- --include-ignored 2>&1 | tee "$log"
# A test that could not run is a failure here: nothing may stay ignored or skipped.
if grep -E '^test result: .* [1-9][0-9]* ignored' "$log" > /dev/null \
  || grep -E '^SKIPPED' "$log" > /dev/null; then
  echo "tests/run.sh: FAILED: tests were ignored or skipped:" >&2
  grep -E '^test .* ignored|^SKIPPED' "$log" >&2 || true
  exit 1
fi

stage "the interface reference, man page and HTML (tests/interface-doc.sh)"
bash tests/interface-doc.sh

# The totals, for the closing line.
read -r passed failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$log")

# The fuzz targets are built and run in the background beside the boards: the
# boards' fat-LTO links, qemu-user tests and emulated boots leave a core idle
# for minutes, and the fuzz build (its own target directory) fills it.
stage "the fuzz targets, 10 s each (tests/fuzz.sh), in the background beside the boards"
fuzz_log=$(mktemp)
bash tests/fuzz.sh 10 > "$fuzz_log" 2>&1 &
fuzz_pid=$!

stage "the boards and the packages (tests/boards.sh)"
bash tests/boards.sh
stage "the fuzz targets' result"
if ! wait "$fuzz_pid"; then
  fuzz_pid=
  cat "$fuzz_log"
  echo "tests/run.sh: FAILED: tests/fuzz.sh" >&2
  exit 1
fi
fuzz_pid=
grep -v '^ *Compiling ' "$fuzz_log" || true
if [ -n "$roots_pid" ]; then
  wait "$roots_pid" || echo "tests/run.sh: the background root maker failed; trying again" >&2
  roots_pid=
  cat "$roots_log"
fi
# The two guests side by side: much of a TCG guest's time is one busy vCPU, so the
# arm64 board's boot (about a minute) fits beside the amd64 system's two boots.
stage "the installed system, booted: amd64 (tests/system/run.sh amd64), the arm64 board beside it"
arm64_log=$(mktemp)
bash tests/system/run.sh arm64 > "$arm64_log" 2>&1 &
arm64_pid=$!
bash tests/system/run.sh amd64
stage "the installed system on an emulated arm64 board (tests/system/run.sh arm64)"
arm64_rc=0
wait "$arm64_pid" || arm64_rc=$?
arm64_pid=
cat "$arm64_log"
[ "$arm64_rc" = 0 ] || { echo "tests/run.sh: FAILED: tests/system/run.sh arm64" >&2; exit 1; }
stage "all tests passed"
# The closing line: cargo test's totals (the boards and the booted system passed too).
echo "cargo-test: $passed passed, $failed failed"
