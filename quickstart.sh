#!/usr/bin/env bash
# The whole thing on one machine with embedded defaults: a private D-Bus bus, the
# AwareID emulator (HTTPS on loopback), facecaptured with sample photos as its
# camera, and facecapturectl enrolling and authenticating people, with the
# capture feedback and progress shown live. No camera, account or system bus.
#
#   bash quickstart.sh
set -euo pipefail
cd "$(dirname "$0")"

# What the build and the private bus need beyond Rust and build-essential: libclang
# (the v4l crate's bindgen) and dbus-daemon. Installed as root or through sudo;
# otherwise the apt-get line to run is printed.
bash scripts/need-debs.sh libclang-dev dbus

cargo build --release --locked -p facecaptured -p awareid-emulator --bins
bin=target/release
# facecapturectl is facecaptured called by that name, as the package links it.
ln -sf facecaptured "$bin/facecapturectl"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A private bus (session type) on a socket of our own.
sed "s|@DIR@|$work|" tests/fixtures/private-bus.conf > "$work/bus.conf"
dbus-daemon --config-file="$work/bus.conf" --nofork --print-address > "$work/bus.addr" 2>/dev/null &
pids+=($!)
while [ ! -s "$work/bus.addr" ]; do sleep 0.05; done
export DBUS_SESSION_BUS_ADDRESS=$(head -1 "$work/bus.addr")

# The AwareID emulator writes its certificate, keys and a daemon config.
"$bin/awareid-emulator" --listen 127.0.0.1:0 --out-dir "$work/emu" > "$work/emulator.log" 2>&1 &
pids+=($!)
while [ ! -s "$work/emu/facecaptured.toml" ]; do sleep 0.05; done

# The camera: sample photos played at 30 fps.
mkdir -p "$work/frames"
cp tests/fixtures/faces/astronaut.jpg "$work/frames/"
cat "$work/emu/facecaptured.toml" - > "$work/facecaptured.toml" <<CONF

[camera]
source = "files"
path = "$work/frames"

[dbus]
bus = "session"

[storage]
state_dir = "$work/state"
CONF

"$bin/facecaptured" --config "$work/facecaptured.toml" > "$work/daemon.log" 2>&1 &
pids+=($!)
until grep -q " ready " "$work/daemon.log"; do sleep 0.05; done
echo "== facecaptured is ready: $(grep -o 'startup_ms=[0-9]*' "$work/daemon.log")"

ctl() { echo; echo "\$ facecapturectl $*"; "$bin/facecapturectl" --session "$@"; }
ctl status
ctl enroll alice --email alice@example.com --first Alice
ctl authenticate alice

echo; echo "== A QR code from the web portal (trigger-enroll), passed to the daemon"
url=$("$bin/facecapturectl" --config "$work/facecaptured.toml" trigger-enroll bob bob@example.com | tail -1)
cp tests/fixtures/faces/solvay-einstein.jpg "$work/frames/" && rm "$work/frames/astronaut.jpg"
ctl enroll-qr "$url"
url=$("$bin/facecapturectl" --config "$work/facecaptured.toml" trigger-authenticate bob | tail -1)
ctl authenticate-qr "$url"

echo; echo "== Someone else in front of the camera for alice: refused"
ctl authenticate alice || echo "(exit status $?: access not granted)"
ctl list
echo; echo "== All done. The daemon's log:"
cat "$work/daemon.log"
