#!/usr/bin/env bash
# Remove what installer/install.sh installed (same PREFIX, XDG_DATA_HOME and DESTDIR as then).
# Your runs, exported models and settings are kept: ~/.local/share/distill-studio/ and
# ~/.config/distill-studio/ are yours; delete them by hand if you want them gone.
set -euo pipefail
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option '$arg' (options: --help)" >&2; exit 2 ;;
  esac
done
# shellcheck source=locations.sh
source "$(cd "$(dirname "$0")" && pwd)/locations.sh"
locations uninstall.sh

if [ ! -x "$dest$appdir/distill-studio" ] && [ ! -e "$dest$data/applications/distill-studio.desktop" ]; then
  echo "uninstall.sh: Distill Studio is not installed under $dest$PREFIX (nothing at $dest$appdir);" \
       "set PREFIX as when you installed it" >&2
  exit 1
fi

removed=0
remove() {
  if [ -e "$1" ] || [ -L "$1" ]; then rm -rf -- "$1"; removed=$((removed + 1)); fi
}
remove "$dest$appdir"
remove "$dest$data/applications/distill-studio.desktop"
for icon in "$dest$data"/icons/hicolor/*/apps/distill-studio.png \
            "$dest$data"/icons/hicolor/scalable/apps/distill-studio.svg; do
  remove "$icon"
  rmdir "$(dirname "$icon")" "$(dirname "$(dirname "$icon")")" 2>/dev/null || true  # if now empty
done
# the commands, only if they are ours (a link to this app, or the engine script naming it)
link="$dest$PREFIX/bin/distill-studio"
if [ -L "$link" ] && [ "$(readlink "$link")" = "$appdir/distill-studio" ]; then remove "$link"; fi
script="$dest$PREFIX/bin/distill-engine"
if [ -f "$script" ] && grep -qF "\"$appdir/distill-studio\" --engine" "$script"; then remove "$script"; fi

if [ -z "$dest" ]; then
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
fi
echo "uninstall.sh: removed Distill Studio ($removed files and folders under $dest$PREFIX)"
echo "  kept your runs and settings: ~/.local/share/distill-studio/, ~/.config/distill-studio/"
