# Sourced by install.sh and uninstall.sh: where the app goes, from PREFIX, XDG_DATA_HOME and
# DESTDIR. Sets PREFIX, data, dest and appdir; `locations NAME` names the calling script in errors.
locations() {
  local name=$1
  if [ -z "${HOME:-}" ] && [ -z "${PREFIX:-}" ]; then
    echo "$name: neither HOME nor PREFIX is set; set PREFIX to where the app goes" >&2
    exit 2
  fi
  if [ -n "${PREFIX:-}" ]; then
    data=$PREFIX/share
  else
    PREFIX=$HOME/.local
    data=${XDG_DATA_HOME:-$PREFIX/share}
  fi
  case "$PREFIX" in /*) ;; *) echo "$name: PREFIX must be an absolute path (got '$PREFIX')" >&2; exit 2 ;; esac
  dest=${DESTDIR:-}
  appdir=$PREFIX/lib/distill-studio
}
