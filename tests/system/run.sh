#!/usr/bin/env bash
# The installed system: the amd64 package on a booted Debian 12 with systemd as
# PID 1, under qemu-system-x86_64 (TCG), no network device. vivid's HDMI output,
# looped into its HDMI capture, is the camera (a face photo streamed into the
# output node); the AwareID emulator runs inside the guest on its loopback
# (arm64: on this machine, reached through qemu's user networking).
# tests/system/guest.sh is the test, run at boot; this script builds what it
# needs, boots the guest, and reads the verdict off the serial console.
#
#   bash tests/system/run.sh [amd64|arm64]   (as root: debootstrap, mkfs; default amd64)
#
# amd64 runs every check (guest.sh "full") with a software TPM2 (swtpm, qemu's
# tpm-tis): the device key and the secrets are sealed to it. Afterwards the disk
# image is scanned for every plain form of the keys and secrets the guest used,
# and the same disk boots again with another TPM (guest.sh "clone"): the daemon
# must not start. arm64 is an emulated board:
# qemu-system-aarch64 virt (cortex-a53) booting Debian's arm64 kernel, and the
# arm64 package's install, D-Bus activation, one enroll and one authentication
# (guest.sh "board"): what differs on the board is the binaries and the kernel,
# not the unit, policy or maintainer scripts the amd64 run checks in full.
#
# Needs: debootstrap, qemu-system-x86 / qemu-system-arm, e2fsprogs (mkfs.ext4 -d),
# cargo-deb, swtpm (amd64); for arm64 also qemu-user-static (debootstrap runs the root's
# maintainer scripts through binfmt_misc), the aarch64 cross toolchain, cpio.
# The Debian root is made once and kept as a tarball in $FACECAPTURE_CACHE
# (default /var/cache/facecaptured-tests), as is the previous release's package
# (the upgrade test), built once from the commit in tests/system/previous.
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:-amd64}
case "$arch" in
  amd64)
    triple=x86_64-unknown-linux-gnu tty=ttyS0 mode=full nic=(-nic none)
    # qemu's baseline x86-64 CPU, not `max`: with AVX2 offered, the JPEG decoder
    # and the detector's libraries pick AVX2 code, which TCG runs about 7x slower
    # (10 detections under qemu-user: 16-18 s with max, 2-2.5 s with qemu64; an
    # enroll in the guest took 22.9 s with max).
    qemu=(qemu-system-x86_64 -accel tcg -cpu qemu64)
    disk=(-drive "file=DISK,format=raw,if=virtio")
    ;;
  arm64)
    triple=aarch64-unknown-linux-gnu tty=ttyAMA0 mode=board
    # User networking: the guest reaches this machine's loopback (the emulator)
    # at 10.0.2.2.
    nic=(-netdev user,id=net0 -device virtio-net-device,netdev=net0)
    qemu=(qemu-system-aarch64 -machine virt -cpu cortex-a53 -accel tcg)
    disk=(-drive "file=DISK,format=raw,if=none,id=hd" -device virtio-blk-device,drive=hd)
    ;;
  *) echo "system/run.sh: unknown architecture $arch (amd64, arm64)" >&2; exit 2 ;;
esac
say() { echo "== system $arch $(date +%T): $*"; }
fail() { echo "system/run.sh: $arch: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, mkfs.ext4)"
tools=("${qemu[0]}" mkfs.ext4 cargo-deb cpio flock)
[ "$arch" = amd64 ] && tools+=(swtpm)
for tool in "${tools[@]}"; do
  command -v "$tool" > /dev/null || fail "$tool missing (tests/run.sh installs it)"
done

cache=${FACECAPTURE_CACHE:-/var/cache/facecaptured-tests}
mkdir -p "$cache"
work=target/system/$arch
mkdir -p "$work"

# 1. The Debian 12 root (made once, kept in the cache).
rootfs=$(bash tests/system/root.sh "$arch")

# 2. The packages: this tree's (as tests/boards.sh builds it: nothing to do then)
# and, for the upgrade test, the previous release's.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
say "the $arch package ($version)"
# (The very build tests/boards.sh makes: nothing is built again.)
cargo build --locked --profile board --target "$triple" -p facecaptured -p vivid-check \
  --bin facecaptured --bin vivid-check
# (Its man pages and completions, which tests/boards.sh made too. tests/run.sh
# runs the amd64 and arm64 tests side by side: the lock keeps one from remaking
# the pages while the other's cargo deb reads them.)
(
  flock 9
  bash scripts/package-docs.sh > /dev/null
  cargo deb --no-build --target "$triple" --profile board --output "$work/current.deb" > /dev/null
) 9> target/package-docs.lock
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
  # Its own workspace: inside this tree, cargo would take this tree's Cargo.toml
  # (a workspace since 0.2.0) for its root and refuse to build it.
  grep -q '^\[workspace\]' "$src/Cargo.toml" || printf '\n[workspace]\n' >> "$src/Cargo.toml"
  # Built into this tree's target directory with this tree's `board` profile
  # (its settings passed as CARGO_PROFILE_BOARD_*, whatever the old Cargo.toml
  # says): the dependencies are the same builds. (It overwrites this tree's
  # binaries; their next build links them again.) --no-default-features: that
  # release still carried the emulator as a default feature of the library.
  top=$(pwd)
  while read -r kv; do export "${kv?}"; done < <(python3 - << 'PY'
import tomllib
board = tomllib.load(open("Cargo.toml", "rb"))["profile"]["board"]
for key in ("opt-level", "lto", "codegen-units", "strip"):
    value = board.get(key)
    if value is not None:
        value = str(value).lower() if isinstance(value, bool) else value
        print(f"CARGO_PROFILE_BOARD_{key.upper().replace('-', '_')}={value}")
PY
  )
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

# 3. The emulator, and the camera's picture. On amd64 it runs inside the guest,
# on its loopback (the secrets test needs every secret to have lived only
# there). On the arm64 board it runs here, on this machine's loopback, and the
# guest reaches it through qemu's user networking at 10.0.2.2: the same HTTPS
# for the daemon, without an aarch64 build of the emulator (5 min in CI) or its
# face checks under TCG. Built in one invocation with the example, so cargo
# resolves the dev-dependencies' features as cargo test did and links nothing
# new (alone: 2.5 min of rebuilds).
cargo build --locked -p facecaptured -p awareid-emulator --example yuyv_frame --bin awareid-emulator
emulator=target/debug/awareid-emulator
emu_pid=
stop_emulator() { [ -z "$emu_pid" ] || kill "$emu_pid" 2> /dev/null || true; emu_pid=; }
if [ "$arch" = arm64 ]; then
  emu_dir=$work/emu
  rm -rf "$emu_dir" && mkdir -p "$emu_dir"
  "$emulator" --listen 127.0.0.1:0 --cert-name 10.0.2.2 --out-dir "$emu_dir" --min-face-px 100 \
    --client-secret "cs-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" \
    --apikey "ak-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" > "$work/emulator.log" 2>&1 &
  emu_pid=$!
  trap stop_emulator EXIT
  # It writes its facecaptured.toml once it listens (the bound is for a hung start).
  for _ in $(seq 1 600); do
    [ -s "$emu_dir/facecaptured.toml" ] && break
    kill -0 "$emu_pid" 2> /dev/null || { cat "$work/emulator.log"; fail "the emulator ended"; }
    sleep 0.1
  done
  port=$(sed -n 's|^base_url = "https://127.0.0.1:\([0-9]*\)".*|\1|p' "$emu_dir/facecaptured.toml")
  [ -n "$port" ] || { cat "$emu_dir/facecaptured.toml"; fail "no port in the emulator's facecaptured.toml"; }
  echo "https://10.0.2.2:$port" > "$emu_dir/url"
  say "the emulator on 127.0.0.1:$port, the guest's 10.0.2.2:$port"
fi
target/debug/examples/yuyv_frame tests/fixtures/faces/astronaut.jpg "$work/face.yuyv"

# 4. The disk: a copy of the root with the test added, booting into it.
say "disk image"
root=$work/root
rm -rf "$root" && mkdir -p "$root"
tar -C "$root" -xf "$rootfs"
mkdir -p "$root/root/test"
cp "${debs[@]}" "$work/face.yuyv" tests/system/guest.sh "$root/root/test/"
if [ "$arch" = arm64 ]; then
  cp -r "$emu_dir" "$root/root/test/emu"
else
  cp "$emulator" "$root/root/test/"
fi
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
# boot NAME MODE: a boot of the disk in guest.sh's MODE, its console in NAME.log;
# on amd64 with a software TPM2 whose state is in $work/NAME.tpm (a new TPM for
# a new name).
swtpm_pid=
stop_swtpm() { [ -z "$swtpm_pid" ] || kill "$swtpm_pid" 2> /dev/null || true; swtpm_pid=; }
trap 'stop_swtpm; stop_emulator' EXIT
boot() {
  local name=$1 guest_mode=$2 tpm=() t
  console=$work/$name.log
  if [ "$arch" = amd64 ]; then
    t=$PWD/$work/$name.tpm # absolute: swtpm --daemon leaves the directory
    rm -rf "$t" && mkdir -p "$t"
    # --daemon returns once the socket listens.
    swtpm socket --tpm2 --tpmstate "dir=$t" --ctrl "type=unixio,path=$t/sock" --terminate \
      --daemon --pid "file=$t/pid" --log "file=$t/log" || fail "swtpm did not start"
    swtpm_pid=$(cat "$t/pid")
    tpm=(-chardev "socket,id=chrtpm,path=$t/sock" -tpmdev emulator,id=tpm0,chardev=chrtpm
         -device tpm-tis,tpmdev=tpm0)
  fi
  say "booting $name (${qemu[0]}, TCG, guest mode $guest_mode)"
  local started
  started=$(date +%s)
  rm -f "$console"
  timeout 2400 "${qemu[@]}" -m 2048 -smp 2 \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "root=/dev/vda rw console=$tty quiet panic=-1 systemd.show_status=false net.ifnames=0 facecapture.mode=$guest_mode" \
    "${disk[@]/DISK/$work/disk.img}" "${tpm[@]}" \
    "${nic[@]}" -nographic -no-reboot -serial "file:$console" -monitor none -display none \
    || echo "system/run.sh: qemu ended with status $?" >&2
  stop_swtpm
  say "guest $name ran $(($(date +%s) - started)) s"
  grep -a '^SYSTEM-' "$console" | grep -av '^SYSTEM-NEEDLE' || true
  if ! grep -aq '^SYSTEM-TEST PASSED' "$console"; then
    tail -80 "$console"
    [ ! -s "$work/emulator.log" ] || { echo "--- the host's emulator (last 20 lines)"; tail -20 "$work/emulator.log"; }
    fail "the booted-system test ($name)"
  fi
}
boot console "$mode"

if [ "$arch" = amd64 ]; then
  # 6. No plain copy of a device key or a secret anywhere on the disk: the guest
  # printed each one it used (test values of this run) as a SYSTEM-NEEDLE line.
  say "scanning the disk image for plain keys and secrets"
  grep -a '^SYSTEM-NEEDLE ' "$console" | tr -d '\r' > "$work/needles"
  python3 - "$work/disk.img" "$work/needles" << 'PY' || fail "a plain key or secret is on the disk image"
import base64, mmap, sys
image, needles = sys.argv[1], sys.argv[2]
forms = []  # (what, bytes)
keys = secrets = 0
migrated = []  # a key that ran plain before it was sealed: reported, not required
def key_forms(label, der):
    at = der.index(bytes([0x02, 0x01, 0x01, 0x04, 0x20])) + 5
    pem_line = base64.b64encode(der).decode()[:64]
    return [(label + " DER", der), (label + " private scalar", der[at:at + 32]),
            (label + " PEM/base64", pem_line.encode())]
for line in open(needles):
    _, kind, value = line.split(maxsplit=2)
    value = value.strip()
    if kind == "migrated":
        migrated = key_forms("the migrated key", base64.b64decode(value))
    elif kind == "key":
        keys += 1
        forms += key_forms("key %d" % keys, base64.b64decode(value))
    else:
        secrets += 1
        forms.append(("secret %d" % secrets, value.encode()))
if keys < 2 or secrets < 3:
    sys.exit(f"only {keys} keys and {secrets} secrets were reported by the guest")
with open(image, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    found = [what for what, b in forms if m.find(b) >= 0]
    left = [what for what, b in migrated if m.find(b) >= 0]
print(f"scanned {len(forms)} forms of {keys} device keys and {secrets} secrets in {image}")
if migrated:
    print("the key that ran plain before the upgrade: " +
          ("still in freed blocks: " + ", ".join(left) if left else "no copy left"))
if found:
    sys.exit("found on the disk image: " + ", ".join(found))
PY
  say "no plain key or secret on the image"
  # 7. The same disk on another board: a new TPM.
  boot clone clone
fi
rm -f "$work/disk.img"
say "passed"
