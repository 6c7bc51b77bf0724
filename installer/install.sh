#!/usr/bin/env bash
# Install the built app (dist/distill-studio/, from installer/build.sh) for this user:
#
#   PREFIX/lib/distill-studio/                 the app folder (replaced as a whole on reinstall)
#   PREFIX/bin/distill-studio                  a link to the app; PREFIX/bin/distill-engine: the engine
#   DATA/applications/distill-studio.desktop   the menu entry
#   DATA/icons/hicolor/*/apps/distill-studio.* the icons
#
# PREFIX is ~/.local unless set; DATA is PREFIX/share (with PREFIX unset: $XDG_DATA_HOME if set).
# DESTDIR stages everything below another root (for packagers); paths inside files stay PREFIX's.
# Options: --no-bin (no links in PREFIX/bin), --help. Remove it again with installer/uninstall.sh.
# Your runs and settings are not the app's: they stay in ~/.local/share/distill-studio/ and
# ~/.config/distill-studio/, untouched by install and uninstall.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=1
for arg in "$@"; do
  case "$arg" in
    --no-bin) bin=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (options: --no-bin, --help)" >&2; exit 2 ;;
  esac
done

src=${DIST:-$repo/dist/distill-studio}
if [ ! -x "$src/distill-studio" ]; then
  echo "install.sh: no built app at $src; run installer/build.sh first" >&2
  exit 1
fi
# shellcheck source=locations.sh
source "$here/locations.sh"
locations install.sh

mkdir -p "$dest$PREFIX/lib" "$dest$data/applications" || {
  echo "install.sh: cannot create folders under $dest$PREFIX; choose a PREFIX you can write to" >&2; exit 1; }

# the app folder: copy beside, then swap, so a failed copy never leaves half an app
echo "install.sh: copying the app ($(du -sm "$src" | cut -f1) MB) to $dest$appdir"
rm -rf "$dest$appdir.new" "$dest$appdir.old"
cp -a "$src" "$dest$appdir.new"
[ -e "$dest$appdir" ] && mv "$dest$appdir" "$dest$appdir.old"
mv "$dest$appdir.new" "$dest$appdir"
rm -rf "$dest$appdir.old"

# icons
icons=$repo/assets/icons
for size in 16 32 48 64 128 256 512; do
  install -D -m 644 "$icons/distill-studio-$size.png" \
    "$dest$data/icons/hicolor/${size}x${size}/apps/distill-studio.png"
done
install -D -m 644 "$icons/distill-studio.svg" "$dest$data/icons/hicolor/scalable/apps/distill-studio.svg"

# the menu entry, pointing at this app folder
sed -e "s|^Exec=.*|Exec=\"$appdir/distill-studio\" %f|" -e "/^Exec=/a TryExec=$appdir/distill-studio" \
  "$here/distill-studio.desktop" > "$dest$data/applications/distill-studio.desktop"
chmod 644 "$dest$data/applications/distill-studio.desktop"

if [ "$bin" = 1 ]; then
  mkdir -p "$dest$PREFIX/bin"
  ln -sfn "$appdir/distill-studio" "$dest$PREFIX/bin/distill-studio"
  printf '#!/bin/sh\n# the engine of Distill Studio (installed by installer/install.sh)\nexec "%s" --engine "$@"\n' \
    "$appdir/distill-studio" > "$dest$PREFIX/bin/distill-engine"
  chmod 755 "$dest$PREFIX/bin/distill-engine"
fi

if [ -z "$dest" ]; then  # refresh the desktop's caches where the tools exist; harmless if not
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
fi

echo "install.sh: installed Distill Studio"
echo "  app:        $appdir/distill-studio"
echo "  menu entry: $data/applications/distill-studio.desktop"
echo "  icons:      $data/icons/hicolor/"
if [ "$bin" = 1 ]; then
  echo "  commands:   $PREFIX/bin/distill-studio, $PREFIX/bin/distill-engine"
  case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) echo "  ($PREFIX/bin is not on your PATH: add it to start them by name)" ;; esac
fi
echo "  remove it:  installer/uninstall.sh (with the same PREFIX)"
