#!/usr/bin/env bash
# Instructions per frame, YUYV 640x480 to a feedback code, with and without the
# face tracked (issue 15), counted by callgrind: deterministic, so a loaded
# machine gives the same figure. Prints one line per photo and mode, and the
# time that count would take on a Cortex-A53 at 1.2 GHz (see the IPC below).
#
#   bash benches/instructions.sh
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
printf '%-22s %-8s %14s %14s\n' photo mode "instr/frame" "A53 ms/frame"
for photo in astronaut.jpg solvay-einstein.jpg no-face.jpg; do
  for mode in full tracked; do
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
      --toggle-collect='*frame_instructions*frames*' \
      "$bin" "$photo" "$mode" "$frames" > "$out/log" 2>&1 \
      || { cat "$out/log" >&2; exit 1; }
    ir=$(grep -m1 '^summary:' "$out/cg" | awk '{print $2}')
    python3 -c "import sys; ir=int(sys.argv[1]); n=int(sys.argv[2]); \
print('%-22s %-8s %14d %14.2f' % (sys.argv[3], sys.argv[4], ir // n, ir / n / ($ipc * $ghz * 1e6)))" \
      "$ir" "$frames" "$photo" "$mode"
  done
done
