#!/usr/bin/env bash
# The initramfs of the emulated arm64 board (tests/system/run.sh arm64): busybox
# and the modules that mount the root disk (virtio-mmio, virtio-blk, ext4), taken
# from the Debian root itself, then systemd as PID 1 on the disk. Made on the
# build machine in a second, where Debian's own initramfs-tools would run for
# minutes under qemu-user. Usage: initramfs.sh ROOT OUT
set -euo pipefail
root=${1:?usage: initramfs.sh ROOT OUT}
out=${2:?usage: initramfs.sh ROOT OUT}
fail() { echo "initramfs.sh: $*" >&2; exit 1; }
[ -x "$root/bin/busybox" ] || fail "no $root/bin/busybox (busybox-static in the root)"
moddir=$(ls -1d "$root"/lib/modules/* 2> /dev/null | sort -V | tail -1)
[ -n "$moddir" ] || fail "no kernel modules in $root/lib/modules"
command -v cpio > /dev/null || fail "cpio missing"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,newroot,mods}
cp "$root/bin/busybox" "$work/bin/busybox"

# Each module after the modules it depends on. ext4 checks its metadata with
# crc32c, which it asks the crypto API for.
. "$(dirname "$0")/../vivid/modules.sh"
modules_into "$moddir" "$work/mods" virtio_mmio virtio_blk crc32c_generic ext4
grep -qx virtio_blk "$work/mods/order" && grep -qx ext4 "$work/mods/order" \
  || fail "virtio_blk or ext4 missing under $moddir"

cat > "$work/init" << 'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod "/mods/$m.ko" || echo "initramfs: insmod $m failed"; done
# The disk appears when virtio-blk has probed it; the bound is for a guest
# without one.
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; poweroff -f; }
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
INIT
chmod +x "$work/init"
(cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
