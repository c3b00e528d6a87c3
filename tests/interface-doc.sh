#!/usr/bin/env bash
# The D-Bus interface's reference, made from its XML as fprintd makes its own:
# gdbus-codegen turns the gtk-doc comments into DocBook, and docbook-xsl's
# stylesheets make a man page (section 7) and HTML of it. Then checks that every
# method, argument, signal, property, error and CaptureFeedback code of the XML is
# in the man page with its description, and that no parameter's description runs
# onto a second line (gtk-doc keeps the first and moves the rest into the body).
#
# Usage: tests/interface-doc.sh [OUTDIR]   (default target/interface-doc)
# Needs libglib2.0-dev-bin (gdbus-codegen), xsltproc, docbook-xsl, man-db (tests/run.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
xml=facecapture-dbus/org.facecapture.FaceCapture1.xml
out=${1:-target/interface-doc}
xsl=/usr/share/xml/docbook/stylesheet/docbook-xsl
version=$(sed -n 's/^version = "\(.*\)"/\1/p' facecapture-dbus/Cargo.toml | head -1)
fail() { echo "interface-doc: FAILED: $*" >&2; exit 1; }
for tool in gdbus-codegen xsltproc man; do
  command -v "$tool" > /dev/null || fail "$tool is missing"
done
[ -d "$xsl" ] || fail "docbook-xsl is missing ($xsl)"

rm -rf "$out" && mkdir -p "$out"
gdbus-codegen --generate-docbook="$out/iface" "$xml"
book=$out/iface-org.facecapture.FaceCapture1.xml
[ -s "$book" ] || fail "gdbus-codegen wrote no DocBook"
# The man page's section, manual and source (gdbus-codegen leaves them out).
sed -i "s|</refentrytitle>|&<manvolnum>7</manvolnum><refmiscinfo class=\"manual\">facecaptured</refmiscinfo><refmiscinfo class=\"source\">facecaptured $version</refmiscinfo>|" "$book"
# --nonet: the DTD is not fetched (and not needed to transform).
xsltproc --nonet --output "$out/" "$xsl/manpages/docbook.xsl" "$book" 2> "$out/man.log" \
  || { cat "$out/man.log" >&2; fail "xsltproc (man page)"; }
xsltproc --nonet --output "$out/org.facecapture.FaceCapture1.html" "$xsl/html/docbook.xsl" "$book" \
  2> "$out/html.log" || { cat "$out/html.log" >&2; fail "xsltproc (HTML)"; }
page=$out/org.facecapture.FaceCapture1.7
[ -s "$page" ] || fail "no man page: $(ls "$out")"
MANWIDTH=200 man -l "$page" 2> /dev/null | col -b > "$out/man.txt"
[ -s "$out/man.txt" ] || fail "man cannot render $page"

# What the man page must hold: every name the XML declares, and the first words of
# every documented parameter (gtk-doc keeps one line per @param).
python3 - "$xml" "$out/man.txt" << 'EOF'
import re, sys, xml.etree.ElementTree as ET
xml_path, man_path = sys.argv[1], sys.argv[2]
src = open(xml_path).read()
man = " ".join(open(man_path).read().split())
root = ET.parse(xml_path).getroot()
want = []
for iface in root.iter("interface"):
    for kind in ("method", "signal", "property"):
        for m in iface.iter(kind):
            want.append(m.get("name"))
            for a in m.iter("arg"):
                want.append(f"{a.get('type')} {a.get('name')}:")
errors = re.findall(r"<term>(\w+)</term>", src)
want += errors
prev = None
for line in src.splitlines():
    m = re.match(r"\s*@(\w+): (.*)", line)
    if prev and not m and line.strip() and not line.strip().startswith("-->"):
        sys.exit(f"@{prev}'s description runs onto a second line: {line.strip()!r}")
    prev = m.group(1) if m else None
    if m:
        if m.group(2).strip() == "":
            sys.exit(f"@{m.group(1)} has no description")
        want.append(" ".join(m.group(2).split()[:6]))
for code in ("face-compliant", "face-on-left", "too-blurry"):
    want.append(code)
missing = [w for w in want if w not in man]
if missing:
    sys.exit("not in the man page: " + "; ".join(missing))
print(f"interface-doc: {len(want)} names and descriptions in the man page")
EOF
grep -q 'class="refentry"\|refentry' "$out/org.facecapture.FaceCapture1.html" || fail "the HTML has no reference"
echo "interface-doc: ok: $page, $out/org.facecapture.FaceCapture1.html"
