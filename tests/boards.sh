#!/usr/bin/env bash
# The boards: what `cargo test` cannot show on the build machine.
#   aarch64, armv7  cross-build the board binaries (profile `board`, no emulator),
#                   run the library's unit tests under qemu-user (armv7), and run the real
#                   V4L2 test (vivid-check/) on an emulated board: qemu-system
#                   booting Debian's arm64 / armmp kernel with vivid, single-planar
#                   and multi-planar (32-bit v4l2_buffer/v4l2_plane on armv7).
#   deb             the Debian packages for amd64, arm64 and armhf (cargo-deb), their
#                   contents checked with dpkg-deb.
#   install         the amd64 package installed into a Debian root made with
#                   debootstrap (tests/system/root.sh's, kept in its cache):
#                   files, users, enable links, conffile, removal.
# Usage: tests/boards.sh [STEP...]   (default: all four, in that order; each step
# builds what it needs, and nothing twice. The emulated boards' vivid boots run in
# the background beside the next build; their verdicts are read at the end.)
#
# Needs what .ci/run installs: Debian's cross toolchains, qemu-user-static,
# qemu-system-arm, debootstrap, cargo-deb, the rustup targets, and the ARM kernels
# unpacked by tests/vivid/fetch-arm.sh. Prints the stripped size of each binary.
set -euo pipefail
cd "$(dirname "$0")/.."

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(aarch64 armv7 deb install)

# Per architecture: the Rust target, the Debian architecture, and what `file` says
# of its binaries.
declare -A triples=([amd64]=x86_64-unknown-linux-gnu [aarch64]=aarch64-unknown-linux-gnu
                    [armv7]=armv7-unknown-linux-gnueabihf)
declare -A debarchs=([amd64]=amd64 [aarch64]=arm64 [armv7]=armhf)
declare -A machines=([amd64]="x86-64" [aarch64]="ARM aarch64" [armv7]="ARM, EABI5")
say() { echo "== boards $(date +%T): $*"; }
fail() { echo "boards.sh: FAILED: $*" >&2; exit 1; }

# What the packages hold: the binaries, the unit and its sysusers and tmpfiles
# entries, the D-Bus policy, activation file and interface, the example config.
package_files=(
  ./usr/bin/facecaptured
  ./usr/bin/facecapturectl
  ./usr/lib/systemd/system/facecaptured.service
  ./usr/lib/sysusers.d/facecaptured.conf
  ./usr/lib/tmpfiles.d/facecaptured.conf
  ./usr/lib/systemd/system/facecaptured-provision.service
  ./usr/share/dbus-1/system.d/org.facecapture.FaceCapture1.conf
  ./usr/share/dbus-1/system-services/org.facecapture.FaceCapture1.service
  ./usr/share/dbus-1/interfaces/org.facecapture.FaceCapture1.xml
  ./etc/facecaptured/config.toml
  ./usr/lib/systemd/catalog/facecaptured.catalog
  ./usr/share/man/man8/facecaptured.8.gz
  ./usr/share/man/man8/facecaptured-provision.8.gz
  ./usr/share/man/man1/facecapturectl.1.gz
  ./usr/share/man/man1/facecapturectl-authenticate.1.gz
  ./usr/share/man/man7/org.facecapture.FaceCapture1.7.gz
  ./usr/share/bash-completion/completions/facecapturectl
  ./usr/share/bash-completion/completions/facecaptured
  ./usr/share/zsh/vendor-completions/_facecapturectl
  ./usr/share/fish/vendor_completions.d/facecapturectl.fish
  ./usr/share/doc/facecaptured/copyright
  ./usr/share/doc/facecaptured/docs/identity.md
  ./usr/share/doc/facecaptured/examples/site-hub.conf
  ./usr/share/doc/facecaptured/changelog.Debian.gz
  ./usr/share/lintian/overrides/facecaptured
)

# The board binaries for one target, built once: the packages' two programs and
# the vivid test program, all with the profile the packages ship.
build() {
  local t
  t=${triples[$1]}
  say "$1: building (profile board, $t)"
  cargo build --locked --profile board --target "$t" -p facecaptured -p vivid-check \
    --bin facecaptured --bin vivid-check
  # One program: facecapturectl is a link to it in the package.
  printf '   %-16s %-32s %9d bytes (stripped)\n' facecaptured "$t" \
    "$(stat -c %s "target/$t/board/facecaptured")"

}

arm() {
  local a=$1 t
  t=${triples[$a]}
  build "$a"
  # The library's unit tests under qemu-user on the 32-bit board only: its ABI
  # (32-bit pointers and time_t, the V4L2 structures' layout) is what differs
  # from x86_64, where cargo test runs them; aarch64 is LP64 and little-endian
  # like x86_64, and its binaries are proven by the vivid test below and the
  # booted arm64 system (tests/system/run.sh arm64).
  if [ "$a" = armv7 ]; then
    say "$a: unit tests under qemu-user"
    cargo test --locked --profile board --target "$t" -p facecaptured --lib
  fi
  vivid_start "$a"
}

# The emulated boards' V4L2 tests run in the background while the next target
# builds: a boot under TCG keeps about one core busy, and the build takes the
# other. Each board's two boots (single- and multi-planar, one after the other)
# run in a session of their own, ended if this script stops first; vivid_check
# waits for them and reads their consoles.
vivid_dir=$(mktemp -d)
vivid_pids=() vivid_arches=()
trap 'for p in "${vivid_pids[@]}"; do kill -- -"$p" 2> /dev/null || true; done; rm -rf "$vivid_dir"' EXIT
apis=(single-planar multi-planar)

vivid_start() {
  local a=$1
  say "$a: the V4L2 test on an emulated $a board, vivid ${apis[*]} (qemu-system, Debian's kernel), in the background"
  setsid bash -c '
    prog=$1 a=$2 dir=$3; shift 3
    for api in "$@"; do
      VIVID_MULTIPLANAR=$([ "$api" = multi-planar ] && echo 1 || echo 0) \
        bash tests/vivid/boot.sh "$prog" "$a" > "$dir/$a-$api.log" 2>&1
      echo "$?" > "$dir/$a-$api.rc"
    done' _ "target/${triples[$a]}/board/vivid-check" "$a" "$vivid_dir" "${apis[@]}" &
  vivid_pids+=($!)
  vivid_arches+=("$a")
}

vivid_check() {
  local p a api log machine
  for p in "${vivid_pids[@]}"; do wait "$p" || true; done
  vivid_pids=()
  for a in "${vivid_arches[@]}"; do
    for api in "${apis[@]}"; do
      log=$vivid_dir/$a-$api.log
      say "$a: the V4L2 test, vivid $api"
      [ "$(cat "$vivid_dir/$a-$api.rc" 2> /dev/null)" = 0 ] \
        || { cat "$log" 2> /dev/null; fail "$a: the vivid test ($api) failed"; }
      grep '^VIVID-' "$log" || true
      grep -q "^VIVID-API $api" "$log" || { cat "$log"; fail "$a: the nodes were not $api"; }
      while IFS= read -r step; do
        grep -q "^$step" "$log" || { cat "$log"; fail "$a: '$step' missing ($api)"; }
      done < tests/vivid/expected
      machine=$(sed -n 's/^VIVID-ARCH \([^[:space:]]*\).*/\1/p' "$log")
      case "$a:$machine" in
        aarch64:aarch64 | armv7:armv7l) ;;
        *) fail "$a: the guest said it is '$machine'" ;;
      esac
    done
  done
  vivid_arches=()
}

deb_path() {
  ls -1t "target/${triples[$1]}/debian/facecaptured_"*"_${debarchs[$1]}.deb" 2>/dev/null | head -1
}

debs() {
  command -v cargo-deb >/dev/null || fail "cargo-deb missing (cargo install cargo-deb)"
  command -v lintian >/dev/null || fail "lintian missing (tests/run.sh installs it)"
  say "man pages and completions (scripts/package-docs.sh)"
  bash scripts/package-docs.sh
  for a in amd64 aarch64 armv7; do
    local t deb d listing
    t=${triples[$a]}
    d=${debarchs[$a]}
    build "$a" # nothing to do when the ARM steps ran
    say "$a: package ($d)"
    cargo deb --no-build --target "$t" --profile board
    deb=$(deb_path "$a")
    [ -n "$deb" ] || fail "$a: cargo deb made no .deb"
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$d" ] || fail "$deb: Architecture is not $d"
    listing=$(dpkg-deb -c "$deb" | awk '{print $6}')
    for f in "${package_files[@]}"; do
      grep -qx -- "$f" <<< "$listing" || fail "$deb lacks $f"
    done
    dpkg-deb -I "$deb" conffiles | grep -qx /etc/facecaptured/config.toml \
      || fail "$deb: /etc/facecaptured/config.toml is not a conffile"
    for s in preinst postinst prerm postrm; do
      dpkg-deb -I "$deb" "$s" > /dev/null || fail "$deb: no $s"
    done
    # The packaged programs are the target's.
    local tmp
    tmp=$(mktemp -d)
    dpkg-deb -x "$deb" "$tmp"
    file "$tmp/usr/bin/facecaptured" | grep -q "${machines[$a]}" \
      || fail "$deb: facecaptured is not an $a binary: $(file "$tmp/usr/bin/facecaptured")"
    # One program: facecapturectl is a link to it, and answers as the CLI.
    [ "$(readlink "$tmp/usr/bin/facecapturectl")" = facecaptured ] \
      || fail "$deb: usr/bin/facecapturectl is not a link to facecaptured"
    printf '   %s: the programs: %d bytes (facecaptured; facecapturectl a link to it)\n' "$deb" \
      "$(du -bc "$tmp"/usr/bin/* | tail -1 | cut -f1)"
    rm -rf "$tmp"
    # Debian's checks: no error, no warning (debian/facecaptured.lintian-overrides
    # holds the justified ones).
    local lint
    lint=$(lintian --fail-on error,warning --tag-display-limit 0 "$deb" 2>&1) \
      || { grep -v "root privileges" <<< "$lint" || true; fail "$deb: lintian reports errors or warnings (above)"; }
    echo "   $deb: lintian: no errors, no warnings"
    printf '   %s: %d bytes, depends: %s\n' "$deb" "$(stat -c %s "$deb")" "$(dpkg-deb -f "$deb" Depends)"
  done
}

install_test() {
  local deb rootfs
  deb=$(deb_path amd64)
  [ -n "$deb" ] || fail "no amd64 package (run: tests/boards.sh deb)"
  # The booted-system test's Debian 12 root (systemd, dbus; made once with
  # debootstrap and kept), unpacked afresh for the test.
  rootfs=$(bash tests/system/root.sh amd64) || fail "the Debian root"
  local sys rc=0
  sys=$(mktemp -d)
  tar -C "$sys" -xf "$rootfs"
  cp "$deb" "$sys/tmp/facecaptured.deb"
  say "install: $(basename "$deb") into a fresh copy of $rootfs"
  bash tests/deb-install.sh "$sys" || rc=$?
  mountpoint -q "$sys/proc" || rm -rf "$sys"
  [ "$rc" = 0 ] || fail "the install test"
}

for s in "${steps[@]}"; do
  case "$s" in
    aarch64 | armv7) arm "$s" ;;
    deb) debs ;;
    install) install_test ;;
    *) fail "unknown step $s (aarch64, armv7, deb, install)" ;;
  esac
done
vivid_check
say "all passed: ${steps[*]}"
