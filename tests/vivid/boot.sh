#!/usr/bin/env bash
# Boots Debian's kernel under qemu (software emulation) with the vivid V4L2 driver
# and runs one test program inside. Usage: [VIVID_MULTIPLANAR=1] boot.sh PROGRAM [ARCH]
# (VIVID_MULTIPLANAR=1 loads vivid with multiplanar=2: its nodes offer only the
# multi-planar API, as MIPI CSI receivers' capture nodes do.)
# ARCH: x86_64 (default), aarch64 or armv7 (the Rust target's architecture; PROGRAM
# must be built for it). Prints the guest's console; exits with the program's code
# (77 when a prerequisite is missing, so a caller can tell "cannot run" from "failed").
#
# Needs: cpio, kmod (modinfo), binutils for the target (readelf, strip), and
#   x86_64:  qemu-system-x86, linux-image-amd64, busybox-static (installed);
#   aarch64: qemu-system-arm, gcc-aarch64-linux-gnu's sysroot, and Debian's arm64
#            kernel and busybox unpacked by tests/vivid/fetch-arm.sh;
#   armv7:   qemu-system-arm, gcc-arm-linux-gnueabihf's sysroot, and Debian's armmp
#            kernel and busybox unpacked by tests/vivid/fetch-arm.sh.
# VIVID_ARM_ROOT overrides where fetch-arm.sh unpacked them (target/vivid-arm).
set -euo pipefail

prog=${1:?usage: boot.sh PROGRAM [ARCH]}
arch=${2:-x86_64}
here=$(cd "$(dirname "$0")" && pwd)
arm_root=${VIVID_ARM_ROOT:-$here/../../target/vivid-arm}

missing() { echo "boot.sh: missing $1" >&2; exit 77; }
command -v cpio >/dev/null || missing cpio
command -v modinfo >/dev/null || missing "modinfo (kmod)"

case "$arch" in
  x86_64)
    # The baseline CPU: TCG runs the AVX2 code `-cpu max` invites ~7x slower.
    qemu=(qemu-system-x86_64 -cpu qemu64); console=ttyS0; cross=""
    libdir=/lib/x86_64-linux-gnu
    busybox=$(command -v busybox || true)
    [ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q "statically linked" \
      || [ -x /bin/busybox ] || missing "busybox (busybox-static)"
    busybox=${busybox:-/bin/busybox}
    # The newest kernel image that has its modules installed.
    kernel=""; moddir=""
    for k in $(ls -1 /lib/modules 2>/dev/null | sort -V -r); do
      if [ -f "/boot/vmlinuz-$k" ] && modinfo -k "$k" -n vivid >/dev/null 2>&1; then
        kernel=/boot/vmlinuz-$k; moddir=/lib/modules/$k; break
      fi
    done
    [ -n "$kernel" ] || missing "a /boot/vmlinuz-* with the vivid module (linux-image-amd64)"
    ;;
  aarch64|armv7)
    if [ "$arch" = aarch64 ]; then
      qemu=(qemu-system-aarch64 -machine virt -cpu cortex-a53); debarch=arm64
      cross=aarch64-linux-gnu
    else
      qemu=(qemu-system-arm -machine virt -cpu cortex-a15); debarch=armhf
      cross=arm-linux-gnueabihf
    fi
    console=ttyAMA0; libdir=/usr/$cross/lib
    [ -d "$libdir" ] || missing "$libdir (the $cross cross toolchain's libc)"
    busybox=$arm_root/$debarch/bin/busybox
    kernel=$(ls -1 "$arm_root/$debarch"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
    moddir=$(ls -1d "$arm_root/$debarch"/lib/modules/* 2>/dev/null | sort -V | tail -1 || true)
    [ -x "$busybox" ] && [ -n "$kernel" ] && [ -n "$moddir" ] \
      || missing "Debian's $debarch kernel and busybox in $arm_root/$debarch (run tests/vivid/fetch-arm.sh)"
    ;;
  *) echo "boot.sh: unsupported arch $arch" >&2; exit 77 ;;
esac
command -v "${qemu[0]}" >/dev/null || missing "${qemu[0]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,mods,tmp,lib}
cp "$busybox" "$root/bin/busybox"

# The test program (stripped: debug info is large).
"${cross:+$cross-}strip" -o "$root/test" "$prog" 2>/dev/null || cp "$prog" "$root/test"
chmod +x "$root/test"

# The loader at the path the program names, its libraries (and theirs) in /lib.
readelf=${cross:+$cross-}readelf
command -v "$readelf" >/dev/null || missing "$readelf (binutils)"
interp=$("$readelf" -l "$prog" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ -n "$interp" ] || { echo "boot.sh: $prog names no program interpreter" >&2; exit 1; }
mkdir -p "$root$(dirname "$interp")"
cp -L "$libdir/$(basename "$interp")" "$root$interp"
todo=("$prog")
while [ ${#todo[@]} -gt 0 ]; do
  f=${todo[0]}; todo=("${todo[@]:1}")
  for need in $("$readelf" -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -e "$root/lib/$need" ] && continue
    [ -e "$libdir/$need" ] || { echo "boot.sh: $need not in $libdir" >&2; exit 1; }
    cp -L "$libdir/$need" "$root/lib/$need"
    todo+=("$root/lib/$need")
  done
done

# vivid and the modules it depends on, in load order.
. "$here/modules.sh"
modules_into "$moddir" "$root/mods" vivid
grep -qx vivid "$root/mods/order" || missing "vivid.ko under $moddir"

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do
  if [ "$m" = vivid ]; then
    insmod /mods/vivid.ko n_devs=2 node_types=0x1,0x101 num_inputs=1,1 \
      input_types=0x0,0x3 num_outputs=1,1 output_types=0x0,0x1 $(cat /vivid-options) \
      || echo "insmod vivid failed"
  else
    insmod /mods/$m.ko || echo "insmod $m failed"
  fi
done
# vivid's three nodes (a webcam; an HDMI input and output). devtmpfs makes them
# before insmod returns; wait for them all the same, at most 10 s, and say so.
n=0
while [ "$(ls /dev/video* 2>/dev/null | wc -l)" -lt 3 ]; do
  n=$((n + 1))
  [ $n -gt 100 ] && { echo "VIVID-NODES missing: $(ls /dev/video* 2>/dev/null)"; break; }
  sleep 0.1
done
echo "VIVID-ARCH $(uname -m)"
LD_LIBRARY_PATH=/lib /test
echo "VIVID-RESULT $?"
poweroff -f
INIT
chmod +x "$root/init"
# VIVID_MULTIPLANAR=1: both vivid instances offer only the multi-planar API.
if [ "${VIVID_MULTIPLANAR:-0}" = 1 ]; then
  echo "multiplanar=2,2" > "$root/vivid-options"
else
  : > "$root/vivid-options"
fi
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initramfs.gz"

log=$work/console.log
timeout "${VIVID_TIMEOUT_S:-600}" "${qemu[@]}" -accel tcg -m 1024 -smp 2 \
  -kernel "$kernel" -initrd "$work/initramfs.gz" \
  -append "console=$console quiet panic=-1" \
  -nographic -no-reboot -serial "file:$log" -monitor none -display none || true
cat "$log"
rc=$(sed -n 's/^VIVID-RESULT \([0-9]*\).*/\1/p' "$log" | tail -1)
[ -n "$rc" ] || { echo "boot.sh: the guest did not report a result" >&2; exit 1; }
exit "$rc"
