# Sourced by tests/vivid/boot.sh and tests/system/initramfs.sh: copies kernel
# modules and the modules they depend on (each module's own "depends" field, read
# with modinfo: works for any architecture's modules) out of a module tree into
# an initramfs, uncompressed, and lists them in load order.
#
#   modules_into MODDIR DEST MODULE...
#
# Writes DEST/<module>.ko and DEST/order. A module with no file in MODDIR is
# built into that kernel and is skipped.
modules_into() {
  local moddir=$1 dest=$2
  shift 2
  local -A seen=()
  : > "$dest/order"
  _module_add() {
    local m=$1 f dep
    [ -n "${seen[$m]:-}" ] && return 0
    seen[$m]=1
    f=$(find "$moddir/kernel" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
    [ -n "$f" ] || return 0
    for dep in $(modinfo -F depends "$f" | tr ',' ' '); do _module_add "$dep"; done
    case "$f" in
      *.ko) cp "$f" "$dest/$m.ko" ;;
      *.ko.xz) xz -dc "$f" > "$dest/$m.ko" ;;
      *.ko.zst) zstd -qdc "$f" > "$dest/$m.ko" ;;
    esac
    echo "$m" >> "$dest/order"
  }
  local m
  for m in "$@"; do _module_add "$m"; done
}
