#!/usr/bin/env bash
# `facecapturectl detect` against OpenCV's Haar cascade (scale 1.1, 3 neighbours,
# min 80 px, one thread) in one run, side by side, over a mixed set of 640x480
# scenes (issue 30): the fixtures' five faces at door distances (120 to 260 px)
# and close to the camera (380 px), and empty scenes (the street and scikit-image's
# photos without a person, each cut three ways). Both sides read the same JPEG
# files and are timed as whole commands, best of five, alternating. Prints the
# set, each side's ms per frame, the ratio (goal: at most 0.20), and what each
# found.
#
#   bash benches/detect-haar.sh
#
# Needs (PyPI, installed for the user when missing): opencv-python-headless 4 (5
# has no Haar cascades),
# scikit-image (for its photos).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import cv2, skimage; cv2.CascadeClassifier" 2> /dev/null \
  || python3 -m pip install --quiet --user "opencv-python-headless<5" scikit-image 2> /dev/null \
  || python3 -m pip install --quiet --user --break-system-packages "opencv-python-headless<5" scikit-image
cargo build --release --quiet --bin facecaptured
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$PWD/target/release/facecaptured" "$dir/facecapturectl"
exec python3 benches/detect_haar.py "$dir"
