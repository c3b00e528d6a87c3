#!/usr/bin/env bash
# The QR sweep (benches/qr_sweep.rs): the project's own QR code in 456 camera
# scenes, read by the door and by zxing-cpp side by side. Installs zxing-cpp and
# scikit-image (PyPI, for the user) when missing, then runs the bench.
#
#   bash benches/qr-sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import zxingcpp, skimage, PIL" 2> /dev/null \
  || python3 -m pip install --quiet --user zxing-cpp scikit-image pillow 2> /dev/null \
  || python3 -m pip install --quiet --user --break-system-packages zxing-cpp scikit-image pillow
exec cargo bench --bench qr_sweep
