#!/usr/bin/env bash
# Instructions per frame, YUYV 640x480 to a feedback code, with and without the
# face tracked (issue 15), counted by callgrind: deterministic, so a loaded
# machine gives the same figure. Prints one line per photo and mode, and the
# time that count would take on a Cortex-A53 at 1.2 GHz (see the IPC below).
#
#   bash benches/instructions.sh            (every case, every mode)
#   MODES=detect bash benches/instructions.sh
#
# Cases: a door-distance face (the astronaut, 124 px; Einstein), the astronaut
# close to the camera (zoomed 3.4x about the face: 400 px), an empty scene (the
# street). Modes: full (judge, a full detection each frame), tracked (judge,
# the face tracked), detect (the detector alone, as `facecapturectl detect`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind > /dev/null || { echo "valgrind is not installed" >&2; exit 1; }
cargo build --release --bench frame_instructions --quiet
bin=$(cargo build --release --bench frame_instructions --message-format=json 2> /dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "frame_instructions" and m.get("executable"):
        print(m["executable"])')
# A Cortex-A53 (in order, dual issue) runs this integer and byte code at about
# 0.8 instructions per cycle; aarch64 needs about as many instructions as x86-64
# for it. Both are estimates: measure on the board for a real figure.
ipc=0.8
ghz=1.2
# Frames counted: a multiple of the tracker's full-detection period (6).
frames=24
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-26s %-8s %14s %14s\n' photo mode "instr/frame" "A53 ms/frame"
for case in astronaut.jpg:1 astronaut.jpg:3.4 solvay-einstein.jpg:1 no-face.jpg:1; do
  photo=${case%:*} zoom=${case#*:}
  for mode in ${MODES:-full tracked detect}; do
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
      --toggle-collect='*frame_instructions*frames*' \
      "$bin" "$photo" "$mode" "$frames" "$zoom" > "$out/log" 2>&1 \
      || { cat "$out/log" >&2; exit 1; }
    ir=$(grep -m1 '^summary:' "$out/cg" | awk '{print $2}')
    python3 -c "import sys; ir=int(sys.argv[1]); n=int(sys.argv[2]); \
print('%-26s %-8s %14d %14.2f' % (sys.argv[3], sys.argv[4], ir // n, ir / n / ($ipc * $ghz * 1e6)))" \
      "$ir" "$frames" "$photo x$zoom" "$mode"
    sed -n 's/.*frames: /    last frame: /p' "$out/log" | cut -c1-90
  done
done
