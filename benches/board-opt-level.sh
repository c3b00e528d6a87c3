#!/usr/bin/env bash
# Chooses the `board` profile's opt-level by measurement. For each of 3, 2, s, z:
#   - the stripped size of facecaptured (the one program) for armv7;
#   - detection speed on ARM code: `facecapturectl detect` over 100 copies of a
#     640x480 face photo under qemu-arm (best of 3; an instruction-count proxy,
#     not a real board's timing);
#   - frame to feedback on this machine (criterion, `benches/capture.rs`, built
#     with the board profile), except for z.
# Each level rebuilds every dependency: about 25 minutes on 2 cores in all.
# Usage: benches/board-opt-level.sh [LEVEL...]   Needs what tests/boards.sh needs.
set -euo pipefail
cd "$(dirname "$0")/.."

t=armv7-unknown-linux-gnueabihf
photo=tests/fixtures/faces/astronaut.jpg
images=()
for _ in $(seq 100); do images+=("$photo"); done
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(3 2 s z)

for level in "${levels[@]}"; do
  export CARGO_PROFILE_BOARD_OPT_LEVEL=$level
  cargo build -q --locked --profile board --target "$t" \
    --bin facecaptured
  ln -sf facecaptured "target/$t/board/facecapturectl"
  printf 'opt-level %s: armv7 facecaptured %d bytes\n' "$level" \
    "$(stat -c %s "target/$t/board/facecaptured")"
  best=""
  for _ in 1 2 3; do
    start=$(date +%s%N)
    qemu-arm-static -L /usr/arm-linux-gnueabihf "target/$t/board/facecapturectl" detect \
      "${images[@]}" > /dev/null
    ms=$((($(date +%s%N) - start) / 1000000))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
  done
  printf 'opt-level %s: detect x100 under qemu-arm: %d ms (best of 3)\n' "$level" "$best"
  if [ "$level" != z ]; then
    cargo bench -q --locked --profile board --bench capture -- \
      --warm-up-time 1 --measurement-time 4 "frame to feedback" 2>&1 \
      | grep -E "^frame to feedback|time:" | paste - - | sed "s/^/opt-level $level: /"
  fi
done
