#!/usr/bin/env bash
# The packages' documentation, made before `cargo deb` (its assets list these
# files): the man pages facecaptured(8), facecapturectl(1) and a page per
# subcommand, and the bash, zsh and fish completions, all from the programs' own
# command lines (facecapture-docs, clap_mangen and clap_complete); the D-Bus
# interface's page org.facecapture.FaceCapture1(7) from its documented XML
# (tests/interface-doc.sh, which also checks it). Man pages gzipped -9n as Debian
# policy wants. Architecture-independent: made once with the host's toolchain.
#
#   bash scripts/package-docs.sh [OUTDIR]   (default target/package-docs)
#
# Needs what tests/interface-doc.sh does (gdbus-codegen, xsltproc, docbook-xsl, man).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/package-docs}
rm -rf "$out" && mkdir -p "$out/man"
cargo run --quiet --locked -p facecapture-docs -- "$out/gen"
bash tests/interface-doc.sh "$out/interface" > /dev/null
for page in "$out"/gen/man/* "$out/interface/org.facecapture.FaceCapture1.7"; do
  gzip -9n -c "$page" > "$out/man/$(basename "$page").gz"
done
mv "$out/gen/completions" "$out/completions"
rm -rf "$out/gen" "$out/interface"
echo "package-docs: $(ls "$out/man" | wc -l) man pages, $(find "$out/completions" -type f | wc -l) completions in $out"
