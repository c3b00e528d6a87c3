#!/usr/bin/env bash
# Boots Debian's kernel under qemu (software emulation) with the vivid V4L2 driver
# and runs one test program inside. Usage: boot.sh PROGRAM [ARCH]
# ARCH: x86_64 (default). Prints the guest's console; exits with the program's code
# (77 when a prerequisite is missing, so a caller can tell "cannot run" from "failed").
#
# Needs: qemu-system-x86, linux-image-amd64, busybox-static, cpio, kmod (modinfo).
set -euo pipefail

prog=${1:?usage: boot.sh PROGRAM [ARCH]}
arch=${2:-x86_64}
[ "$arch" = x86_64 ] || { echo "boot.sh: unsupported arch $arch" >&2; exit 77; }

missing() { echo "boot.sh: missing $1" >&2; exit 77; }
command -v qemu-system-x86_64 >/dev/null || missing "qemu-system-x86_64 (qemu-system-x86)"
command -v cpio >/dev/null || missing cpio
command -v modinfo >/dev/null || missing "modinfo (kmod)"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q "statically linked" \
  || [ -x /bin/busybox ] || missing "busybox (busybox-static)"
busybox=${busybox:-/bin/busybox}

# The newest kernel image that has its modules installed.
kver=""
for k in $(ls -1 /lib/modules 2>/dev/null | sort -V -r); do
  if [ -f "/boot/vmlinuz-$k" ] && modinfo -k "$k" -n vivid >/dev/null 2>&1; then kver=$k; break; fi
done
[ -n "$kver" ] || missing "a /boot/vmlinuz-* with the vivid module (linux-image-amd64)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,mods,tmp}
cp "$busybox" "$root/bin/busybox"

# The test program and the shared libraries it links (stripped: debug info is large).
strip -o "$root/test" "$prog" 2>/dev/null || cp "$prog" "$root/test"
chmod +x "$root/test"
for lib in $(ldd "$prog" 2>/dev/null | grep -o '/[^ ]*' || true); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

# vivid and what it needs, in load order.
: > "$root/mods/order"
for m in rc-core cec mc videodev videobuf2-common videobuf2-memops videobuf2-v4l2 \
         videobuf2-vmalloc videobuf2-dma-contig v4l2-dv-timings v4l2-tpg vivid; do
  path=$(modinfo -k "$kver" -n "$m" 2>/dev/null || true)
  case "$path" in
    /*.ko) cp "$path" "$root/mods/$m.ko"; echo "$m" >> "$root/mods/order" ;;
    /*.ko.xz) xz -dc "$path" > "$root/mods/$m.ko"; echo "$m" >> "$root/mods/order" ;;
    /*.ko.zst) zstd -qdc "$path" > "$root/mods/$m.ko"; echo "$m" >> "$root/mods/order" ;;
    *) ;; # built in, or not needed by this kernel
  esac
done

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do
  if [ "$m" = vivid ]; then
    insmod /mods/vivid.ko n_devs=2 node_types=0x1,0x101 num_inputs=1,1 \
      input_types=0x0,0x3 num_outputs=1,1 output_types=0x0,0x1 || echo "insmod vivid failed"
  else
    insmod /mods/$m.ko || echo "insmod $m failed"
  fi
done
sleep 1
/test
echo "VIVID-RESULT $?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initramfs.gz"

log=$work/console.log
timeout "${VIVID_TIMEOUT_S:-600}" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 \
  -kernel "/boot/vmlinuz-$kver" -initrd "$work/initramfs.gz" \
  -append "console=ttyS0 quiet panic=-1" \
  -nographic -no-reboot -serial "file:$log" -monitor none -display none || true
cat "$log"
rc=$(sed -n 's/^VIVID-RESULT \([0-9]*\).*/\1/p' "$log" | tail -1)
[ -n "$rc" ] || { echo "boot.sh: the guest did not report a result" >&2; exit 1; }
exit "$rc"
