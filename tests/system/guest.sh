#!/bin/bash
# The booted-system test, run at boot inside the guest that tests/system/run.sh
# makes (Debian 12, systemd as PID 1; no network device, but on the board qemu's
# user networking to the host's emulator). It installs the package
# as an operator would and checks what a site gets. Each check prints a
# "SYSTEM-CHECK" line on the serial console; the last line is "SYSTEM-TEST
# PASSED" or "SYSTEM-FAIL ...". The guest powers off at the end either way.
# The mode (facecapture.mode= on the kernel command line, else $T/mode) is
# "full" (every check, amd64, with a TPM2), "board" (an emulated arm64 board
# without a TPM: the install, the unconfigured start, D-Bus activation, one
# enroll and one authentication; checks 1-3), or "clone": the disk a full run
# left, booted with another TPM (the daemon must not start).
# Every device key and secret the run uses is printed as a SYSTEM-NEEDLE line:
# run.sh scans the disk image for their plain forms.
set -uo pipefail
T=/root/test
MODE=$(sed -n 's/.*facecapture\.mode=\([a-z]*\).*/\1/p' /proc/cmdline)
[ -n "$MODE" ] || MODE=$(cat "$T/mode" 2> /dev/null || echo full)
# The emulator's files (the tenant's secrets among them) stay off the disk.
EMU=/run/emu
SECRETS=()

finish() {
  local rc=$?
  if [ "$rc" = 0 ]; then
    echo "SYSTEM-TEST PASSED"
  else
    echo "SYSTEM-TEST EXIT $rc"
    echo "--- journal of facecaptured (last 60 lines)"
    journalctl -u facecaptured --no-pager -n 60 -o short-precise
    echo "--- journal of facecaptured-provision (last 20 lines)"
    journalctl -u facecaptured-provision --no-pager -n 20 -o short-precise
    ls -la /etc/facecaptured/credentials 2> /dev/null
    echo "--- emulator log (last 20 lines)"
    tail -20 /root/emulator.log 2> /dev/null
  fi
  sync
  systemctl poweroff --no-block
}
trap finish EXIT

ok() { echo "SYSTEM-CHECK ok: $*"; }
fail() { echo "SYSTEM-FAIL $*"; exit 1; }
# Waits for a condition another process brings about; the bound is for a hung
# system (TCG is slow), not a synchronisation.
wait_until() {
  local what=$1 i
  shift
  for i in $(seq 1 600); do
    "$@" > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "waited 120 s for $what"
}
prop() { systemctl show -p "$1" --value facecaptured.service; }
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups env HOME=/ "$@"; }
# door is a door controller (group facecapture), admin an administrator
# (facecapture-admin), guest neither.
ctl() { as door facecapturectl "$@"; }
actl() { as admin facecapturectl "$@"; }
bus_call() {
  local u=$1 method=$2
  shift 2
  as "$u" busctl --system call org.facecapture.FaceCapture1 /org/facecapture/FaceCapture1 \
    org.facecapture.FaceCapture1 "$method" "$@"
}
journal_sync() { journalctl --sync; }
exposure() {
  local unit=${1:-facecaptured.service}
  systemd-analyze security --no-pager "$unit" 2>&1 | tee /root/security.txt \
    | sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\).*/\1/p"
}

echo "SYSTEM-BOOT $MODE $(uname -m) $(uname -r) systemd $(systemctl --version | head -1 | cut -d' ' -f2)"

# The sealed device key as this TPM opens it (base64 DER), or nothing.
sealed_key() {
  systemd-creds decrypt --name=device_key /etc/facecaptured/credentials/device_key.cred - \
    2> /dev/null | sed -n 's/.*"key_pkcs8":"\([^"]*\)".*/\1/p'
}
protection() {
  as door busctl --system get-property org.facecapture.FaceCapture1 \
    /org/facecapture/FaceCapture1 org.facecapture.FaceCapture1 DeviceKeyProtection
}

# --- The clone: the disk of a provisioned terminal, another TPM.
if [ "$MODE" = clone ]; then
  [ -e /sys/class/tpmrm/tpmrm0 ] || fail "the clone has no TPM"
  [ -s /etc/facecaptured/credentials/device_key.cred ] || fail "the disk has no sealed key"
  [ -z "$(sealed_key)" ] || fail "the sealed device key opens with another TPM"
  ok "the sealed device key does not open with this board's TPM"
  # The door controller's call is answered at once, by name (D-Bus activation
  # starts the daemon without the key; before, the call waited 25 s for the
  # activation to time out).
  t0=$(date +%s%N)
  r=$(as door facecapturectl authenticate alice 2>&1) && fail "the clone authenticated: $r"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  grep -q 'Unprovisioned: .*does not open on this board' <<< "$r" \
    || fail "the clone's answer does not name the key: $r"
  [ "$ms" -lt 20000 ] || fail "the clone answered after $ms ms"
  journal_sync
  line=$(journalctl -b -u facecaptured-provision --no-pager -o cat | grep 'does not open on this board' | head -1)
  [ -n "$line" ] || { journalctl -b -u facecaptured-provision --no-pager; fail "no journal line saying the key does not open"; }
  [ "$(protection)" = 's "unusable"' ] || fail "DeviceKeyProtection on the clone: $(protection)"
  journalctl -b -u facecaptured --no-pager -o cat | grep -q 'provisioning failed on this start' \
    || { journalctl -b -u facecaptured --no-pager; fail "the daemon's journal does not say why it signs nothing"; }
  if journalctl -b -u facecaptured --no-pager -o cat | grep -q 'AwareID call'; then
    fail "the clone called AwareID"
  fi
  ok "the clone answers Unprovisioned in $ms ms and signs nothing: '$line' ($r)"
  exit 0
fi

# --- The camera: vivid's HDMI output looped into its HDMI capture, a face photo
# streamed into the output.
modprobe vivid n_devs=2 node_types=0x1,0x101 num_inputs=1,1 input_types=0x0,0x3 \
  num_outputs=1,1 output_types=0x0,0x1 || fail "modprobe vivid"
udevadm settle
node() { grep -l "^$1\$" /sys/class/video4linux/*/name | head -1 | xargs dirname | xargs basename; }
cap=/dev/$(node vivid-001-vid-cap)
out=/dev/$(node vivid-001-vid-out)
[ -c "$cap" ] && [ -c "$out" ] || fail "vivid nodes: cap=$cap out=$out"
timing_640x480() {
  v4l2-ctl -d "$1" --list-dv-timings | awk '
    /Index:/ { i = $2 } /Active width: 640$/ { w = 1 } /Active height: 480$/ && w { print i; exit }
    /^$/ { w = 0 }'
}
for d in "$cap" "$out"; do
  idx=$(timing_640x480 "$d")
  [ -n "$idx" ] || fail "no 640x480 DV timing on $d"
  v4l2-ctl -d "$d" --set-dv-bt-timings "index=$idx" > /dev/null || fail "set DV timings on $d"
done
v4l2-ctl -d "$cap" -c loop_video=1 > /dev/null || fail "loop_video on $cap"
v4l2-ctl -d "$cap" -c osd_text_mode=2 > /dev/null 2>&1 || true
v4l2-ctl -d "$out" --set-fmt-video-out=width=640,height=480,pixelformat=YUYV,field=none \
  || fail "output format"
v4l2-ctl -d "$out" --stream-out-mmap --stream-from "$T/face.yuyv" --stream-loop \
  > /root/stream.log 2>&1 &
ok "camera: $cap (vivid HDMI capture) looped from $out, streaming a face photo"

# --- The AwareID emulator. On a board it runs on the host that runs the guest
# (tests/system/run.sh left its files and URL in $T/emu): the guest reaches the
# host's loopback at 10.0.2.2 through qemu's user networking. Otherwise it runs
# on the guest's loopback, with secrets of this run.
if [ -s "$T/emu/url" ]; then
  EMU=$T/emu
  EMU_URL=$(cat "$EMU/url")
  hostport=${EMU_URL#https://}
  modprobe virtio_net 2> /dev/null || true
  wait_until "eth0" test -e /sys/class/net/eth0
  busybox ip link set eth0 up || fail "eth0 up"
  busybox ip addr add 10.0.2.15/24 dev eth0 || fail "eth0 address"
  wait_until "the host's emulator at $hostport" \
    bash -c "exec 3<> /dev/tcp/${hostport%:*}/${hostport#*:}"
  ok "emulator on the host, $EMU_URL through qemu's user networking"
else
  EMU_URL=https://127.0.0.1:8443
  cs=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  ak=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  # Faces from 100 px: the astronaut is 124 px wide, and detection under TCG is slow.
  "$T/awareid-emulator" --listen 127.0.0.1:8443 --out-dir "$EMU" --min-face-px 100 \
    --client-secret "cs-$cs" --apikey "ak-$ak" > /root/emulator.log 2>&1 &
  wait_until "the emulator" test -s "$EMU/facecaptured.toml"
  SECRETS+=("cs-$cs" "ak-$ak" "$(cat "$EMU/qr-aes-key")")
  ok "emulator on 127.0.0.1:8443"
fi
emu() { curl -sSk "$EMU_URL/__emulator/$1" "${@:2}"; }

# The callers: door (group facecapture), admin (facecapture-admin), guest (neither).
useradd_once() { id "$1" > /dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$@"; }

# --- 1. A fresh install: the user exists before the D-Bus policy naming it lands.
out=$(dpkg -i "$T/current.deb" 2>&1) || { echo "$out"; fail "dpkg -i current.deb"; }
busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
journal_sync
if journalctl -u dbus --no-pager -o cat | grep -i "unknown user\|unknown group"; then
  fail "dbus-daemon read the policy before its user existed"
fi
getent passwd facecaptured > /dev/null || fail "no user facecaptured"
ok "install $(dpkg-query -W -f='${Version}' facecaptured): user and group made before the policy"
useradd_once door -G facecapture
useradd_once admin -G facecapture-admin
useradd_once guest
[ "$(prop ActiveState)" = inactive ] || fail "running right after install: $(prop ActiveState)"
[ "$(systemctl is-enabled facecaptured)" = enabled ] || fail "not enabled"
ok "enabled, not started"

# --- 2. Unconfigured: one line naming the missing key, and no restart loop.
if systemctl start facecaptured 2> /dev/null; then fail "an unconfigured start succeeded"; fi
journal_sync
lines=$(journalctl -u facecaptured --no-pager -o cat | grep -c 'config:')
line=$(journalctl -u facecaptured --no-pager -o cat | grep 'config:' | head -1)
[ "$lines" = 1 ] || fail "$lines config: lines in the journal"
grep -q 'config: server.client_secret: missing secret' <<< "$line" || fail "config line: $line"
[ "$(prop ActiveState)/$(prop SubState)" = failed/failed ] \
  || fail "unconfigured unit is $(prop ActiveState)/$(prop SubState) (a restart loop?)"
[ "$(prop ExecMainStatus)" = 78 ] || fail "exit status $(prop ExecMainStatus), not 78"
[ "$(prop NRestarts)" = 0 ] || fail "restarted $(prop NRestarts) times"
ok "unconfigured: one journal line ($line), exit 78, failed, not restarted"

# --- 3. Configured without QR codes (no aes_key anywhere): D-Bus activation.
# configure [qr]: the tenant's server (the emulator), its CA, client_secret and
# apikey as credentials; with "qr" also its QR signing key and the AES key.
configure() {
  local qr=""
  install -m 644 "$EMU/emulator-cert.pem" /etc/facecaptured/emulator-cert.pem
  install -d -m 700 /etc/facecaptured/credentials
  install -m 600 "$EMU/client_secret" /etc/facecaptured/credentials/client_secret
  install -m 600 "$EMU/apikey" /etc/facecaptured/credentials/apikey
  if [ "${1:-}" = qr ]; then
    install -m 644 "$EMU/qr-signing-public.pem" /etc/facecaptured/qr-signing-public.pem
    install -m 600 "$EMU/qr-aes-key" /etc/facecaptured/credentials/aes_key
    qr='[qr]
signing_public_key = "/etc/facecaptured/qr-signing-public.pem"'
  fi
  cat > /etc/facecaptured/config.toml << CONF
[server]
base_url = "$EMU_URL"
customer_name = "emulated"
client_id = "door-terminal"
ca_file = "/etc/facecaptured/emulator-cert.pem"
timeout_s = 30

[camera]
source = "v4l"
device = "$cap"
formats = ["YUYV"]

[capture]
timeout_s = 30

[daemon]
operation_timeout_s = 24
$qr
CONF
}
configure
systemctl reset-failed facecaptured
[ "$(prop ActiveState)" = inactive ] || fail "not inactive before the first call"
status=$(ctl status) || fail "status through D-Bus activation: $status"
[ "$(prop ActiveState)" = active ] || fail "the call did not start the unit"
ok "D-Bus activation: door's call started the unit: $status"
ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms)
r=$(actl enroll alice --email alice@example.com --first Alice 2>&1) || fail "enroll alice: $r"
t1=$(ms)
r=$(ctl authenticate alice 2>&1) || fail "authenticate alice: $r"
t2=$(ms)
grep -q '"granted":true' <<< "$r" || fail "alice not granted: $r"
ok "client-initiated enroll by admin ($((t1 - t0)) ms) and authenticate by door ($((t2 - t1)) ms), no QR configured"

# --- 3b. Sealed at rest: the key and the secrets as sealed credentials, with the
# TPM2 on the amd64 guest and systemd's host key on the board (no TPM).
# check_sealed EXPECTED: the protection, the provisioning's journal, no plain file.
check_sealed() {
  local p plain
  p=$(protection) || fail "DeviceKeyProtection: $p"
  grep -qF "\"$1\"" <<< "$p" || fail "DeviceKeyProtection is $p, not $1"
  journal_sync
  journalctl -u facecaptured-provision --no-pager -o cat | grep -q "^protection: $1" \
    || { journalctl -u facecaptured-provision --no-pager -o cat; fail "provisioning did not say $1"; }
  plain=$(find /etc/facecaptured/credentials -type f ! -name '*.cred')
  [ -z "$plain" ] || fail "plain credential files left: $plain"
  [ -n "$(sealed_key)" ] || fail "the sealed device key does not open on its own board"
}
# needles: every plain form to look for on the disk image (run.sh scans it).
needles() {
  local s
  echo "SYSTEM-NEEDLE key $(sealed_key)"
  for s in "${SECRETS[@]}"; do echo "SYSTEM-NEEDLE secret $s"; done
}
if [ "$MODE" = board ]; then
  check_sealed host-key
  ok "sealed at rest with systemd's host key (no TPM on this board): DeviceKeyProtection host-key"
  exit 0
fi
check_sealed tpm2
needles
ok "sealed at rest: DeviceKeyProtection tpm2, the secrets in *.cred files, no plain file left"

# --- 4. QR codes: the tenant's signing key and the AES key as a credential.
configure qr
systemctl restart facecaptured || fail "restart with QR"
url=$(facecapturectl --config "$EMU/facecaptured.toml" trigger-enroll bob bob@example.com | tail -1)
r=$(actl enroll-qr "$url" 2>&1) || fail "enroll-qr: $r"
grep -q '"username":"bob"' <<< "$r" || fail "enroll-qr: $r"
url=$(facecapturectl --config "$EMU/facecaptured.toml" trigger-authenticate bob | tail -1)
r=$(ctl authenticate-qr "$url" 2>&1) || fail "authenticate-qr: $r"
grep -q '"granted":true' <<< "$r" || fail "bob not granted: $r"
ok "enroll and authenticate from QR codes"

# --- 5. Who may call: the door controller authenticates but does not enroll or
# remove; outsiders get AccessDenied, and may still look.
for call in "Enroll sssss eve eve@example.com '' '' ''" "EnrollWithQr s x" "ListEnrollments" \
            "RemoveEnrollment s alice"; do
  eval "set -- $call"
  r=$(bus_call door "$@" 2>&1) && fail "door could call $1: $r"
  grep -qi "access denied\|AccessDenied" <<< "$r" || fail "door's $1 error: $r"
done
ok "door: AccessDenied on Enroll, EnrollWithQr, ListEnrollments, RemoveEnrollment"
r=$(bus_call guest Authenticate s alice 2>&1) && fail "guest could call Authenticate: $r"
grep -qi "access denied\|AccessDenied" <<< "$r" || fail "guest's error: $r"
r=$(bus_call guest Enroll sssss eve eve@example.com "" "" "" 2>&1) && fail "guest could Enroll: $r"
state=$(as guest busctl --system get-property org.facecapture.FaceCapture1 \
  /org/facecapture/FaceCapture1 org.facecapture.FaceCapture1 State) \
  || fail "guest cannot read State"
ok "guest: AccessDenied on Authenticate and Enroll, reads State ($state)"

# --- 6. SIGKILL: systemd brings it back, with the enrollments.
systemctl start facecaptured.service || fail "start facecaptured"
pid=$(prop MainPID)
systemctl kill -s KILL facecaptured
wait_until "the restart after SIGKILL" \
  sh -c '[ "$(systemctl show -p NRestarts --value facecaptured)" = 1 ] && systemctl is-active -q facecaptured'
[ "$(prop MainPID)" != "$pid" ] || fail "same pid after SIGKILL"
list=$(actl list) || fail "list after SIGKILL"
grep -q '"alice"' <<< "$list" && grep -q '"bob"' <<< "$list" || fail "enrollments lost: $list"
r=$(ctl authenticate alice 2>&1) || fail "authenticate after SIGKILL: $r"
ok "SIGKILL: restarted (pid $pid -> $(prop MainPID)), alice and bob still enrolled"

# --- 7. A failed server call is in the journal with its HTTP status.
emu faults -H 'content-type: application/json' \
  -d '{"call": "verifyFace", "kind": {"type": "status", "code": 500}, "times": 1}' > /dev/null
r=$(ctl authenticate alice 2>&1) && fail "authenticate with a failing server: $r"
grep -q ServerUnavailable <<< "$r" || fail "failing server gave: $r"
ok "a failing server: ServerUnavailable"

# --- 8. The journal: structured fields, and no secret anywhere in it.
journal_sync
fields=$(journalctl -u facecaptured --no-pager -o verbose)
for f in OPERATION STEP USERNAME DURATION_MS; do
  grep -q "^ *$f=" <<< "$fields" || fail "no $f field in the journal"
done
grep -q "^ *HTTP_STATUS=500" <<< "$fields" || fail "no HTTP_STATUS=500 for the failed call"
mapfile -t codes < <(sqlite3 /var/lib/facecaptured/facecaptured.db \
  'SELECT registration_code FROM enrollments')
[ "${#codes[@]}" = 2 ] || fail "${#codes[@]} registration codes stored"
mapfile -t tokens < <(emu requests | grep -o '"bearer":"[^"]*"' | cut -d'"' -f4 | sort -u)
[ "${#tokens[@]}" -ge 1 ] || fail "no bearer tokens recorded by the emulator"
all=$(journalctl --no-pager -o export)
for s in "${SECRETS[@]}" "${codes[@]}" "${tokens[@]}"; do
  [ "${#s}" -ge 6 ] || fail "a secret shorter than 6 characters"
  if grep -qF -- "$s" <<< "$all"; then fail "a secret is in the journal"; fi
done
if grep -q "data=" <<< "$all"; then fail "a QR URL is in the journal"; fi
ok "journal: OPERATION STEP USERNAME DURATION_MS HTTP_STATUS; none of ${#SECRETS[@]} secrets, ${#codes[@]} codes, ${#tokens[@]} tokens"

# --- 8b. The audit trail: journalctl MESSAGE_ID=<granted> lists the grants (alice's
# and bob's above), and -x explains each record from the installed catalog (the
# systemd package's trigger compiled it when the package was installed).
granted=8446d3cfc56a4acf8e060d4bed6f0ad9 refused=7d2b23f4b0fb4d4fbd1b46e803ba81ec
grants=$(journalctl MESSAGE_ID=$granted --no-pager -o cat)
grep -q '^access granted: alice$' <<< "$grants" && grep -q '^access granted: bob$' <<< "$grants" \
  || fail "journalctl MESSAGE_ID=$granted: $grants"
if grep -v '^access granted: ' <<< "$grants"; then fail "not a grant under MESSAGE_ID=$granted"; fi
refusals=$(journalctl MESSAGE_ID=$refused --no-pager -o verbose)
grep -q 'REASON=ServerUnavailable: ' <<< "$refusals" || fail "the failed authentication's refusal: $refusals"
explained=$(journalctl -x MESSAGE_ID=$granted --no-pager -n 1)
grep -q "Subject: Access granted: alice" <<< "$explained" \
  && grep -q "the face was live and matched the enrollment" <<< "$explained" \
  || fail "journalctl -x shows no catalog text: $explained"
did=$(ctl status | grep -o '"device_id":"[^"]*"' | cut -d'"' -f4)
[ -n "$did" ] && journalctl MESSAGE_ID=$granted DEVICE_ID="$did" USERNAME=alice OUTCOME=granted -q --no-pager -o cat | grep -q . \
  || fail "no grant under DEVICE_ID=$did USERNAME=alice OUTCOME=granted"
ok "audit: $(wc -l <<< "$grants") grants under MESSAGE_ID=$granted, the refusal's REASON, the catalog's text under journalctl -x"

# --- 8c. systemctl reload: a changed setting (the metrics textfile, in the state
# directory the sandbox lets it write) takes effect without a restart or the bus
# name changing hands; a broken configuration is refused and the old one kept.
systemctl start facecaptured.service || fail "start facecaptured"
pid=$(prop MainPID)
owner=$(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
  GetNameOwner s org.facecapture.FaceCapture1)
cp /etc/facecaptured/config.toml /root/config.toml.kept
sed -i 's|^operation_timeout_s = 24$|&\nmetrics_textfile = "/var/lib/facecaptured/metrics.prom"|' \
  /etc/facecaptured/config.toml
systemctl reload facecaptured || fail "systemctl reload"
wait_until "the reloaded configuration" sh -c \
  'journalctl -u facecaptured -o cat --no-pager | grep -q "configuration reloaded"'
r=$(ctl authenticate alice 2>&1) || fail "authenticate after the reload: $r"
wait_until "the metrics textfile" grep -q 'facecaptured_operations_total{operation="authenticate",outcome="granted"}' \
  /var/lib/facecaptured/metrics.prom
sed -i 's|^\[capture\]$|&\nframes = 0|' /etc/facecaptured/config.toml
systemctl reload facecaptured || fail "systemctl reload (broken)"
wait_until "the refused reload" sh -c \
  'journalctl -u facecaptured -o cat --no-pager | grep -q "reload refused"'
journalctl -u facecaptured -o cat --no-pager | grep -q "^config: capture.frames: " \
  || fail "the refused reload has no config: line"
systemctl is-active -q facecaptured || fail "the daemon stopped after a broken reload"
r=$(ctl authenticate alice 2>&1) || fail "authenticate after the refused reload: $r"
[ "$(prop MainPID)" = "$pid" ] || fail "the reloads restarted the daemon"
[ "$(busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
  GetNameOwner s org.facecapture.FaceCapture1)" = "$owner" ] || fail "the bus name changed hands"
cp /root/config.toml.kept /etc/facecaptured/config.toml
ok "reload: the metrics textfile appeared without a restart (pid $pid, name $owner); a broken configuration refused, the old one kept"

# --- 8d. Commissioning on the installed package: camera-check through vivid's
# loopback (an administrator; the snapshot for root only, written 0600), and doctor.
# This guest has no NTP, so doctor names the clock, and only the clock, and fails;
# once the kernel's clock is marked synchronised as an NTP client marks it
# (adjtimex ADJ_STATUS|ADJ_MAXERROR, through perl-base's syscall: x86_64's 159),
# every check passes and it exits 0.
r=$(actl camera-check --seconds 3 2>&1) || fail "camera-check: $r"
grep -q '"driver":"vivid"' <<< "$r" && grep -q '^advice: framing is good' <<< "$r" \
  || fail "camera-check of the face in the loopback: $r"
r=$(actl camera-check --seconds 1 --snapshot /tmp/aim.png 2>&1) \
  && fail "an administrator got a snapshot: $r"
grep -q 'root only' <<< "$r" || fail "the snapshot's refusal: $r"
facecapturectl camera-check --seconds 2 --snapshot /root/aim.png > /root/check.json 2> /dev/null \
  || fail "root's camera-check with a snapshot"
[ "$(stat -c %a /root/aim.png)" = 600 ] && [ "$(head -c 4 /root/aim.png | tail -c 3)" = PNG ] \
  || fail "the snapshot: $(stat -c %a /root/aim.png)"
rm -f /root/aim.png
d=$(actl doctor 2>&1) && fail "doctor passed with the clock not synchronised: $d"
grep -q '^FAIL clock: .*not synchronised by NTP' <<< "$d" && [ "$(grep -c '^FAIL' <<< "$d")" = 1 ] \
  || fail "doctor, the clock unsynchronised (the guest has no NTP): $d"
for c in config daemon credentials camera awareid disk; do
  grep -q "^ok   $c: " <<< "$d" || fail "doctor's $c check: $d"
done
perl -e '$t = pack("I x4 q4 i", 0x14, 0, 0, 0, 0, 0); $t .= "\0" x (208 - length $t);
         exit(syscall(159, $t) < 0)' || fail "marking the clock synchronised"
d=$(actl doctor 2>&1) || fail "doctor with every check passing: $d"
grep -q '^all 7 checks passed$' <<< "$d" || fail "doctor: $d"
ok "commissioning: camera-check sees the face through vivid, the snapshot for root alone (0600); doctor fails on the unsynchronised clock alone, then all 7 checks pass"

# --- 9. Exposure.
level=$(exposure)
echo "SYSTEM-EXPOSURE facecaptured.service $level"
[ -n "$level" ] || { cat /root/security.txt; fail "no exposure level"; }
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || { cat /root/security.txt; fail "exposure $level > 2.0"; }
ok "systemd-analyze security: $level (at most 2.0)"
plevel=$(exposure facecaptured-provision.service)
echo "SYSTEM-EXPOSURE facecaptured-provision.service $plevel"
[ -n "$plevel" ] || { cat /root/security.txt; fail "no exposure level for the provisioning"; }
awk -v l="$plevel" 'BEGIN { exit !(l < 5.0) }' \
  || { cat /root/security.txt; fail "provisioning exposure $plevel >= 5"; }
ok "systemd-analyze security: facecaptured-provision.service $plevel (below 5)"
# No core dump, no swap, and the running daemon not dumpable: its /proc files
# belong to root, not to the daemon's user.
[ "$(prop LimitCORE)" = 0 ] && [ "$(prop MemorySwapMax)" = 0 ] \
  || fail "LimitCORE=$(prop LimitCORE) MemorySwapMax=$(prop MemorySwapMax)"
systemctl start facecaptured.service || fail "start facecaptured"
pid=$(prop MainPID)
[ "$pid" -gt 0 ] && [ "$(stat -c %U "/proc/$pid/fd")" = root ] \
  || fail "the daemon (pid $pid) is dumpable: /proc/$pid/fd is $(stat -c %U "/proc/$pid/fd" 2>&1)"
ok "LimitCORE=0, MemorySwapMax=0, the daemon not dumpable"

# --- 10. Purge takes the configuration, credentials and enrollments.
dpkg -P facecaptured > /dev/null 2>&1 || fail "purge"
[ ! -e /var/lib/facecaptured ] && [ ! -e /etc/facecaptured ] \
  || fail "purge left $(ls -d /var/lib/facecaptured /etc/facecaptured 2> /dev/null)"
ok "purge: state, configuration and credentials gone"

# --- 11. An upgrade from the previous release keeps the enrollments and the device id.
out=$(dpkg -i "$T/previous.deb" 2>&1) || { echo "$out"; fail "dpkg -i previous.deb"; }
old=$(dpkg-query -W -f='${Version}' facecaptured)
# (The previous release cannot start without an aes_key credential.)
configure qr
# (0.1.0's policy lets group facecapture call everything; it has no admin group.)
r=$(ctl enroll carol --email carol@example.com 2>&1) || fail "enroll carol on $old: $r"
id_before=$(ctl status | grep -o '"device_id":"[^"]*"')
# As a fleet upgrades, unattended: the site's edited config.toml is kept, and the
# package's new one (its comments changed) is put beside it.
site_conf=$(sha256sum < /etc/facecaptured/config.toml)
out=$(dpkg --force-confdef --force-confold -i "$T/current.deb" 2>&1 < /dev/null) \
  || { echo "$out"; fail "upgrade to current.deb"; }
[ "$(sha256sum < /etc/facecaptured/config.toml)" = "$site_conf" ] \
  || fail "the upgrade replaced the site's config.toml"
new=$(dpkg-query -W -f='${Version}' facecaptured)
version=$(as door busctl --system get-property org.facecapture.FaceCapture1 \
  /org/facecapture/FaceCapture1 org.facecapture.FaceCapture1 Version)
grep -qF "\"${new%-*}\"" <<< "$version" || fail "after the upgrade the daemon is $version, not $new"
id_after=$(ctl status | grep -o '"device_id":"[^"]*"')
[ "$id_before" = "$id_after" ] || fail "device id changed: $id_before -> $id_after"
list=$(actl list) || fail "list after the upgrade"
grep -q '"carol"' <<< "$list" || fail "the upgrade lost carol: $list"
r=$(ctl authenticate carol 2>&1) || fail "authenticate carol after the upgrade: $r"
ok "upgrade $old -> $new: the new daemon runs, carol, the device id ($id_after) and the site's config.toml kept"
# The upgrade moved the old release's plain key into the TPM-sealed credential.
check_sealed tpm2
[ "$(sqlite3 /var/lib/facecaptured/facecaptured.db 'SELECT length(key_pkcs8) FROM device')" = 0 ] \
  || fail "the database still holds the key after the migration"
echo "SYSTEM-NEEDLE migrated $(sealed_key)"
ok "migration: the key moved into the TPM-sealed credential, the database row scrubbed"
dpkg -P facecaptured > /dev/null 2>&1 || fail "purge after the upgrade"
[ ! -e /var/lib/facecaptured ] || fail "purge left the enrollments"
ok "purge after the upgrade"

# --- 12. A provisioned terminal, left for the clone boot (run.sh boots this disk
# again with another TPM).
out=$(dpkg -i "$T/current.deb" 2>&1) || { echo "$out"; fail "dpkg -i current.deb again"; }
configure qr
r=$(actl enroll alice --email alice@example.com 2>&1) || fail "enroll alice again: $r"
r=$(ctl authenticate alice 2>&1) || fail "authenticate alice again: $r"
check_sealed tpm2
needles
ok "provisioned with the TPM2 again, alice enrolled and granted: the disk for the clone boot"
