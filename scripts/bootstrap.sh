#!/usr/bin/env bash
# Prepare this checkout to run multiplan: system packages, a Python >= 3.11 virtualenv in .venv,
# and the project installed into it (editable, with the test extras).
#
#   scripts/bootstrap.sh MODE      MODE = run | test | screenshot | lint | sample | all
#
# MODE decides which Debian packages are needed. As root the missing ones are installed
# (apt-get update once, then apt-get install -y --no-install-recommends); otherwise the exact
# `sudo apt-get install ...` command is printed, and the script stops only if a missing package
# is strictly needed for MODE. A second run with nothing changed installs nothing and takes well
# under a second: packages are checked with dpkg, and pip runs only when pyproject.toml (or the
# interpreter) changed since the last install (stamp file .venv/.multiplan-bootstrap).
set -euo pipefail

mode=${1:-all}
case "$mode" in run|test|screenshot|lint|sample|all) ;; *)
  echo "usage: $0 run|test|screenshot|lint|sample|all" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv="$root/.venv"
stamp="$venv/.multiplan-bootstrap"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# One bootstrap at a time per checkout (several `make test` may start together).
lockfile="${TMPDIR:-/tmp}/multiplan-bootstrap-$(printf '%s' "$root" | cksum | cut -d' ' -f1).lock"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$lockfile"
  flock 9
fi

# ---------------------------------------------------------------- Debian packages
# Qt runtime for PySide6 (offscreen and real windows).
pkgs_qt="libegl1 libgl1 libglx0 libglvnd0 libxkbcommon0 libfontconfig1 libfreetype6 libdbus-1-3
  libglib2.0-0 libx11-6"
# "Noto Sans CJK SC": Chinese text on maps and in the window.
pkgs_font="fonts-noto-cjk"
# Independent checkers used by the tests: ogrinfo/gdaldem (gdal-bin), pdffonts (poppler-utils).
pkgs_check="gdal-bin poppler-utils"
# A real X window under Xvfb, and xwd to capture it.
pkgs_x="xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0
  libxcb-xinerama0 libxcb-shape0 libxcb-cursor0 libxcb-xkb1 libxkbcommon-x11-0 x11-apps"

strict="" optional=""
case "$mode" in
  run)        strict="$pkgs_qt"; optional="$pkgs_font" ;;
  test)       strict="$pkgs_qt"; optional="$pkgs_font $pkgs_check" ;;
  screenshot) strict="$pkgs_qt $pkgs_x"; optional="$pkgs_font" ;;
  lint|sample) ;;
  all)        strict="$pkgs_qt"; optional="$pkgs_font $pkgs_check $pkgs_x" ;;
esac
# On CI (root) everything a mode uses is installed, so optional packages are there too.

# Print the packages of "$@" that dpkg does not report as installed. Newer Debian/Ubuntu renamed
# some libraries with a t64 suffix (libglib2.0-0t64); either name counts.
missing_pkgs() {
  [ $# -gt 0 ] || return 0
  local names=() p
  for p in "$@"; do names+=("$p" "${p}t64"); done
  local installed
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${names[@]}" 2>/dev/null \
    | awk '$2 ~ /^ii/ {print $1}' || true)
  for p in "$@"; do
    if ! grep -qxF -e "$p" -e "${p}t64" <<<"$installed"; then printf '%s\n' "$p"; fi
  done
}

apt_updated=""
apt_install() {  # as root only
  if [ -z "$apt_updated" ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
    apt_updated=1
  fi
  local p resolved=()
  for p in "$@"; do  # pick the t64 name where only that one exists
    if ! apt-cache show "$p" >/dev/null 2>&1 && apt-cache show "${p}t64" >/dev/null 2>&1; then
      resolved+=("${p}t64")
    else
      resolved+=("$p")
    fi
  done
  say "apt-get install --no-install-recommends ${resolved[*]}"
  local log
  log=$(mktemp)
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${resolved[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "apt-get install failed"
  fi
  rm -f "$log"
}

ensure_debs() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian/Ubuntu system: make sure the equivalents of these are installed:"
    say "  $(echo $strict $optional)"
    return 0
  fi
  # shellcheck disable=SC2086  # word splitting of the package lists is intended
  local miss_strict miss_opt
  miss_strict=$(missing_pkgs $strict | xargs)
  # shellcheck disable=SC2086
  miss_opt=$(missing_pkgs $optional | xargs)
  [ -n "$miss_strict$miss_opt" ] || return 0
  if is_root; then
    # shellcheck disable=SC2086
    apt_install $miss_strict $miss_opt
    return 0
  fi
  local all
  all=$(echo $miss_strict $miss_opt)
  say "missing Debian packages; install them with:"
  printf '\n    sudo apt-get install -y --no-install-recommends %s\n\n' "$all" >&2
  if [ -n "$miss_strict" ]; then
    die "'$mode' cannot work without: $miss_strict"
  fi
  say "continuing without them (tests that need them are skipped; Chinese text may show as boxes)"
}

# ---------------------------------------------------------------- Python
py_ok() {  # $1 = interpreter: true if it runs and is >= 3.11
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

pick_python() {
  local c
  for c in python3 python3.13 python3.12 python3.11; do
    if command -v "$c" >/dev/null 2>&1 && py_ok "$c"; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

suggest_python_pkgs() {  # the apt packages that give a Python >= 3.11 with venv on this system
  local v
  for v in 3.13 3.12 3.11; do
    if apt-cache show "python$v-venv" >/dev/null 2>&1; then
      echo "python$v python$v-venv"
      return 0
    fi
  done
  echo "python3 python3-venv"
}

ensure_make() {
  command -v make >/dev/null 2>&1 && return 0
  if is_root && command -v apt-get >/dev/null 2>&1; then
    apt_install make
  else
    say "GNU make is missing; install it with:"
    printf '\n    sudo apt-get install -y make\n\n' >&2
  fi
}

venv_ok() {
  [ -x "$venv/bin/python" ] && py_ok "$venv/bin/python"
}

want_stamp() {
  # What the installed environment was made from: the interpreter and pyproject.toml.
  printf '%s\n%s\n' "$("$venv/bin/python" -c 'import sys; print(sys.version)')" \
    "$(cksum < "$root/pyproject.toml")"
}

ensure_venv() {
  if venv_ok && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(want_stamp)" ]; then
    return 0  # fast path: nothing changed since the last install
  fi
  if ! venv_ok; then
    local py
    if ! py=$(pick_python); then
      if command -v apt-get >/dev/null 2>&1; then
        local want
        want=$(suggest_python_pkgs)
        if is_root; then
          # shellcheck disable=SC2086
          apt_install $want
          py=$(pick_python) || die "no Python >= 3.11 even after installing $want"
        else
          say "multiplan needs Python >= 3.11 (python3, or python3.13/3.12/3.11 on PATH)."
          printf '\n    sudo apt-get install -y %s\n\n' "$want" >&2
          die "then run this again"
        fi
      else
        die "multiplan needs Python >= 3.11 (python3, or python3.13/3.12/3.11 on PATH)"
      fi
    fi
    local ver
    ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
      if is_root && command -v apt-get >/dev/null 2>&1; then
        apt_install "python$ver-venv"
      else
        say "$py ($ver) has no working venv module; install it with:"
        printf '\n    sudo apt-get install -y python%s-venv\n\n' "$ver" >&2
        die "then run this again"
      fi
    fi
    say "creating .venv with $py ($ver)"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
  fi
  say "installing multiplan into .venv (pip install -e '.[test]'; about a minute the first time)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[test]" >&2
  # validate_gpkg.py (GDAL's GeoPackage validator); its own deps would pull the GDAL bindings.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps gdal-utils >&2
  want_stamp > "$stamp"
}

ensure_make
ensure_debs
ensure_venv
