#!/usr/bin/env bash
# The installed system: the amd64 package on a booted Debian 12 with systemd as
# PID 1, under qemu-system-x86_64 (TCG), no network device. vivid's HDMI output,
# looped into its HDMI capture, is the camera (a face photo streamed into the
# output node); the AwareID emulator runs inside the guest on its loopback.
# tests/system/guest.sh is the test, run at boot; this script builds what it
# needs, boots the guest, and reads the verdict off the serial console.
#
#   bash tests/system/run.sh [amd64|arm64]   (as root: debootstrap, mkfs; default amd64)
#
# amd64 runs every check (guest.sh "full"). arm64 is an emulated board:
# qemu-system-aarch64 virt (cortex-a53) booting Debian's arm64 kernel, and the
# arm64 package's install, D-Bus activation, one enroll and one authentication
# (guest.sh "board"): what differs on the board is the binaries and the kernel,
# not the unit, policy or maintainer scripts the amd64 run checks in full.
#
# Needs: debootstrap, qemu-system-x86 / qemu-system-arm, e2fsprogs (mkfs.ext4 -d),
# cargo-deb; for arm64 also qemu-user-static (debootstrap runs the root's
# maintainer scripts through binfmt_misc), the aarch64 cross toolchain, cpio.
# The Debian root is made once and kept as a tarball in $FACECAPTURE_CACHE
# (default /var/cache/facecaptured-tests), as is the previous release's package
# (the upgrade test), built once from the commit in tests/system/previous.
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:-amd64}
# What a test boot does not need: no kernel package in the arm64 root (its
# postinst would build an initramfs under qemu-user, twice; that alone took most
# of an hour here). Its files are unpacked into the root instead, and the disk is
# mounted by a busybox initramfs made below.
base_pkgs=systemd-sysv,dbus,udev,kmod,v4l-utils,procps
case "$arch" in
  amd64)
    triple=x86_64-unknown-linux-gnu tty=ttyS0 mode=full
    # curl: the emulator's fault injection; sqlite3: the registration codes
    # (the secrets test); the kernel's own initramfs mounts the disk.
    pkgs=$base_pkgs,linux-image-amd64,curl,sqlite3,ca-certificates
    qemu=(qemu-system-x86_64 -accel tcg -cpu max)
    disk=(-drive "file=DISK,format=raw,if=virtio")
    ;;
  arm64)
    triple=aarch64-unknown-linux-gnu tty=ttyAMA0 mode=board
    pkgs=$base_pkgs,busybox-static
    qemu=(qemu-system-aarch64 -machine virt -cpu cortex-a53 -accel tcg)
    disk=(-drive "file=DISK,format=raw,if=none,id=hd" -device virtio-blk-device,drive=hd)
    ;;
  *) echo "system/run.sh: unknown architecture $arch (amd64, arm64)" >&2; exit 2 ;;
esac
say() { echo "== system $arch $(date +%T): $*"; }
fail() { echo "system/run.sh: $arch: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, mkfs.ext4)"
for tool in debootstrap "${qemu[0]}" mkfs.ext4 cargo-deb cpio; do
  command -v "$tool" > /dev/null || fail "$tool missing (tests/run.sh installs it)"
done

# binfmt_misc, for a foreign root's maintainer scripts: mounted and the qemu
# handler registered if they are not, and put back as they were on exit.
binfmt_undo=()
binfmt_cleanup() {
  local i
  for ((i = ${#binfmt_undo[@]} - 1; i >= 0; i--)); do eval "${binfmt_undo[$i]}" || true; done
}
trap binfmt_cleanup EXIT
binfmt_on() {
  local name=$1 dir=/proc/sys/fs/binfmt_misc
  if [ ! -e "$dir/register" ]; then
    mount -t binfmt_misc binfmt_misc "$dir" || fail "cannot mount binfmt_misc"
    binfmt_undo+=("umount $dir")
  fi
  if [ ! -e "$dir/$name" ]; then
    sed -n '/^:/p' "/usr/lib/binfmt.d/$name.conf" > "$dir/register" \
      || fail "cannot register $name with binfmt_misc (qemu-user-static)"
    binfmt_undo+=("echo -1 > $dir/$name")
  fi
}

cache=${FACECAPTURE_CACHE:-/var/cache/facecaptured-tests}
mkdir -p "$cache"
work=target/system/$arch
mkdir -p "$work"

# 1. The Debian 12 root: systemd, dbus, udev, kmod, v4l-utils for vivid, and
# the kernel.
rootfs=$cache/bookworm-system-$arch-v1.tar
if [ ! -f "$rootfs" ]; then
  say "debootstrap bookworm (once; kept in $rootfs)"
  [ "$arch" = amd64 ] || binfmt_on qemu-aarch64
  tmp=$(mktemp -d "$cache/root.XXXXXX")
  started=$(date +%s)
  debootstrap --arch="$arch" --variant=minbase --include="$pkgs" \
    bookworm "$tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$cache/debootstrap-$arch.log" 2>&1 \
    || { tail -20 "$cache/debootstrap-$arch.log"; rm -rf "$tmp"; fail "debootstrap"; }
  say "debootstrap took $(($(date +%s) - started)) s"
  if [ "$arch" = arm64 ]; then
    # Debian's arm64 kernel, unpacked (not configured) into the root, its module
    # index made here.
    kpkg=$(apt-cache depends linux-image-arm64:arm64 \
      | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -1)
    [ -n "$kpkg" ] || fail "no kernel package behind linux-image-arm64:arm64 (dpkg --add-architecture arm64)"
    dl=$(mktemp -d)
    (cd "$dl" && apt-get download -qq -o APT::Sandbox::User=root "$kpkg:arm64") || fail "apt-get download $kpkg"
    # (--keep-directory-symlink: the root's /lib is a link to usr/lib.)
    dpkg-deb --fsys-tarfile "$dl"/linux-image-*.deb | tar -x --keep-directory-symlink -C "$tmp"
    rm -rf "$dl"
    depmod -b "$tmp" "${kpkg#linux-image-}" || fail "depmod for $kpkg"
  fi
  tar -C "$tmp" -cf "$rootfs.part" . && mv "$rootfs.part" "$rootfs"
  rm -rf "$tmp"
fi

# 2. The packages: this tree's (as tests/boards.sh builds it: nothing to do then)
# and, for the upgrade test, the previous release's.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
say "the $arch package ($version)"
cargo build --locked --profile board --target "$triple" --no-default-features \
  --bin facecaptured --bin facecapturectl
cargo deb --no-build --target "$triple" --profile board --output "$work/current.deb" > /dev/null
debs=("$work/current.deb")

prev_commit=$(grep -v '^#' tests/system/previous | head -1)
prev_deb=$cache/facecaptured-$prev_commit-$arch.deb
if [ "$mode" = board ]; then
  : # the board run has no upgrade test
elif [ ! -f "$prev_deb" ]; then
  say "building the previous release's package (commit $prev_commit, once)"
  src=$work/previous-src
  rm -rf "$src" && mkdir -p "$src"
  git archive "$prev_commit" | tar -x -C "$src"
  # Built into this tree's target directory: the dependencies are the same
  # builds. (It overwrites this tree's binaries; their next build links them again.)
  top=$(pwd)
  (cd "$src" && CARGO_TARGET_DIR=$top/target cargo build --locked --profile board \
      --target "$triple" --no-default-features --bin facecaptured --bin facecapturectl \
    && CARGO_TARGET_DIR=$top/target cargo deb --no-build --target "$triple" \
      --profile board --output "$top/$src/previous.deb" > /dev/null)
  cp "$src/previous.deb" "$prev_deb.part" && mv "$prev_deb.part" "$prev_deb"
  rm -rf "$src"
fi
if [ "$mode" = full ]; then
  cp "$prev_deb" "$work/previous.deb"
  debs+=("$work/previous.deb")
  say "packages: previous $(dpkg-deb -f "$work/previous.deb" Version), current $(dpkg-deb -f "$work/current.deb" Version)"
fi

# 3. The emulator for the guest's architecture (on a board, optimised: it runs
# the face detector too), and the camera's picture.
cargo build --locked --example yuyv_frame
if [ "$arch" = amd64 ]; then
  cargo build --locked --bin awareid-emulator
  emulator=target/debug/awareid-emulator
else
  cargo build --locked --profile board --target "$triple" --bin awareid-emulator
  emulator=target/$triple/board/awareid-emulator
fi
target/debug/examples/yuyv_frame tests/fixtures/faces/astronaut.jpg "$work/face.yuyv"

# 4. The disk: a copy of the root with the test added, booting into it.
say "disk image"
root=$work/root
rm -rf "$root" && mkdir -p "$root"
tar -C "$root" -xf "$rootfs"
mkdir -p "$root/root/test"
cp "${debs[@]}" "$work/face.yuyv" tests/system/guest.sh "$emulator" "$root/root/test/"
echo "$mode" > "$root/root/test/mode"
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$root/etc/machine-id"
echo terminal > "$root/etc/hostname"
cat > "$root/etc/systemd/system/facecapture-test.service" << UNIT
[Unit]
Description=facecaptured booted-system test
After=dbus.service systemd-udevd.service systemd-journald.service
[Service]
Type=oneshot
ExecStart=/bin/bash /root/test/guest.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/$tty
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/facecapture-test.service \
  "$root/etc/systemd/system/multi-user.target.wants/facecapture-test.service"
# What a test boot does not need.
for u in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer \
         e2scrub_reap.service fstrim.timer getty@tty1.service "serial-getty@$tty.service" \
         systemd-timesyncd.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
cp "$(ls -1 "$root"/boot/vmlinuz-* | sort -V | tail -1)" "$work/vmlinuz"
if [ "$arch" = amd64 ]; then
  cp "$(ls -1 "$root"/boot/initrd.img-* | sort -V | tail -1)" "$work/initrd.img"
else
  bash tests/system/initramfs.sh "$root" "$work/initrd.img" || fail "the initramfs"
fi
size=$(($(du -sm "$root" | cut -f1) + 1024))
rm -f "$work/disk.img"
mkfs.ext4 -q -F -d "$root" "$work/disk.img" "${size}M"
rm -rf "$root"

# 5. Boot. The guest powers off when the test ends; the timeout is for a hung guest.
say "booting (${qemu[0]}, TCG)"
console=$work/console.log
started=$(date +%s)
timeout 2400 "${qemu[@]}" -m 2048 -smp 2 \
  -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
  -append "root=/dev/vda rw console=$tty quiet panic=-1 systemd.show_status=false net.ifnames=0" \
  "${disk[@]/DISK/$work/disk.img}" \
  -nic none -nographic -no-reboot -serial "file:$console" -monitor none -display none \
  || echo "system/run.sh: qemu ended with status $?" >&2
say "guest ran $(($(date +%s) - started)) s"
grep -a '^SYSTEM-' "$console" || true
grep -aq '^SYSTEM-TEST PASSED' "$console" || { tail -80 "$console"; fail "the booted-system test"; }
rm -f "$work/disk.img"
say "passed"
