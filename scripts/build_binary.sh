#!/usr/bin/env bash
# Build the Linux one-folder desktop binary with PyInstaller and prove it works.
#
#   scripts/build_binary.sh                 build, check, measure (what CI runs)
#   scripts/build_binary.sh --screenshot F  also save a cropped screenshot of the
#                                           frozen app on the virtual screen to F
#   scripts/build_binary.sh --no-baseline   skip freezing the bare tray baseline
#
# Steps: icons up to date; `pyinstaller build.spec` into dist/presence-desktop/;
# the frozen `--version` and `--self-test` offscreen, then on Xvfb with trayer as
# the tray host (inside a private D-Bus session); start-up time until the tray
# icon is docked; binary size (folder and .tar.gz) against a bare
# PySide6-Essentials tray app frozen with the same spec and with PyInstaller's
# defaults. Needs: xvfb xauth x11-utils trayer imagemagick xdotool dbus and the
# libxcb packages .ci/run installs. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export UV_PYTHON_DOWNLOADS=never

NAME=presence-desktop
DIST=$ROOT/dist
WORK=$ROOT/build/pyinstaller
BIN=$DIST/$NAME/$NAME
REPORT=$ROOT/build/binary-report.txt
RUNS=5 # start-up samples per binary

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'build_binary: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ X phase
# Runs inside dbus-run-session (see below) so no stray bus outlives the script.

# A private, empty home for each frozen run: never the real config or keychain.
sandbox() {
  local d
  d=$(mktemp -d "$SCRATCH/home.XXXXXX")
  mkdir -p "$d/config" "$d/data" "$d/state" "$d/cache" "$d/runtime"
  chmod 700 "$d/runtime"
  # exec: a backgrounded call's $! is then the app itself, not a shell around it.
  exec env HOME="$d" XDG_CONFIG_HOME="$d/config" XDG_DATA_HOME="$d/data" \
    XDG_STATE_HOME="$d/state" XDG_CACHE_HOME="$d/cache" XDG_RUNTIME_DIR="$d/runtime" "$@"
}

start_display() {
  # Our stdout is a pipe when called as `... | tee`: nothing long-lived may hold it.
  Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp \
    3>"$SCRATCH/display" >"$SCRATCH/xvfb.log" 2>&1 </dev/null &
  XVFB_PID=$!
  trap 'kill "$XVFB_PID" ${TRAYER_PID:+"$TRAYER_PID"} ${APP_PID:+"$APP_PID"} 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    [ -s "$SCRATCH/display" ] && break
    sleep 0.05
  done
  [ -s "$SCRATCH/display" ] || fail "Xvfb did not start: $(cat "$SCRATCH/xvfb.log")"
  DISPLAY=":$(head -n1 "$SCRATCH/display")"
  export DISPLAY
  trayer --edge top --align right --widthtype request --height 28 --SetDockType true \
    --transparent false --tint 0x202020 >"$SCRATCH/trayer.log" 2>&1 </dev/null &
  TRAYER_PID=$!
  PANEL=""
  for _ in $(seq 100); do
    PANEL=$(xwininfo -root -tree 2>/dev/null | awk '/\("panel" "trayer"\)/ {print $1; exit}')
    [ -n "$PANEL" ] && break
    sleep 0.05
  done
  [ -n "$PANEL" ] || fail "trayer did not map its panel: $(cat "$SCRATCH/trayer.log")"
}

# Launch "$@" and wait until a window of class $1 is docked in trayer's panel.
# Sets DOCK_MS (milliseconds since launch) and leaves the app running as APP_PID.
launch_until_docked() {
  local class=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  QT_QPA_PLATFORM=xcb sandbox "$@" >"$SCRATCH/app.log" 2>&1 </dev/null &
  APP_PID=$!
  for _ in $(seq 1500); do # 15 s at 10 ms
    if xwininfo -tree -id "$PANEL" 2>/dev/null | grep -q "(\"$class\""; then
      t1=$(date +%s%N)
      DOCK_MS=$(((t1 - t0) / 1000000))
      return 0
    fi
    kill -0 "$APP_PID" 2>/dev/null || { cat "$SCRATCH/app.log" >&2; fail "$class exited before docking"; }
    sleep 0.01
  done
  cat "$SCRATCH/app.log" >&2
  fail "$class: no tray icon docked within 15 s"
}

stop_app() {
  kill "$APP_PID" 2>/dev/null || true
  wait "$APP_PID" 2>/dev/null || true
  # The next launch must not find this one's icon still docked.
  for _ in $(seq 200); do
    xwininfo -tree -id "$PANEL" 2>/dev/null | grep -q "(\"$1\"" || return 0
    sleep 0.01
  done
  fail "$1: tray icon still docked 2 s after the app ended"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

time_startup() {
  local class=$1; shift
  local samples=()
  for _ in $(seq "$RUNS"); do
    launch_until_docked "$class" "$@"
    samples+=("$DOCK_MS")
    stop_app "$class"
  done
  STARTUP_MS=$(printf '%s\n' "${samples[@]}" | median)
  echo "$class: ${samples[*]} ms -> median ${STARTUP_MS} ms"
}

# Is a window of the app taller than the tray icon visible (the popup)?
popup_visible() {
  local w
  for w in $(xdotool search --onlyvisible --class "$NAME" 2>/dev/null); do
    local HEIGHT=0
    eval "$(xdotool getwindowgeometry --shell "$w" | grep '^HEIGHT=')"
    [ "$HEIGHT" -gt 100 ] && return 0
  done
  return 1
}

screenshot() {
  local target=$1 full="$SCRATCH/full.png"
  # The demo opens its popup by itself once the simulated friends are online.
  launch_until_docked "$NAME" "$BIN" --demo
  local shown=0
  for _ in $(seq 300); do
    if popup_visible; then shown=1; break; fi
    kill -0 "$APP_PID" 2>/dev/null || { cat "$SCRATCH/app.log" >&2; fail "--demo exited"; }
    sleep 0.05
  done
  [ "$shown" = 1 ] || { cat "$SCRATCH/app.log" >&2; fail "--demo: no popup within 15 s"; }
  sleep 1.5 # avatars and the last friends' rows settle
  import -window root "$full"
  stop_app "$NAME"
  # Crop to what is drawn (the panel and the popup) on the empty black root.
  convert "$full" -trim +repage -bordercolor '#000000' -border 12 "$target"
  echo "screenshot: $target ($(identify -format '%wx%h' "$target"))"
}

x_phase() {
  start_display

  step "frozen --self-test on Xvfb ($DISPLAY) with trayer as tray host"
  local out
  # $(...) is a subshell, so sandbox's exec replaces only that.
  out=$(QT_QPA_PLATFORM=xcb sandbox "$BIN" --self-test) || { echo "$out"; fail "self-test failed on xcb"; }
  echo "$out"
  grep -q "platform 'xcb'" <<<"$out" || fail "self-test did not run on xcb"
  grep -q "tray icon shown" <<<"$out" || fail "tray icon was not docked during the self-test"

  step "start-up time to tray icon docked (median of $RUNS)"
  time_startup "$NAME" "$BIN"
  echo "startup_app_ms=$STARTUP_MS" >>"$SCRATCH/x.env"
  if [ -x "$DIST/baseline-tray/baseline-tray" ]; then
    time_startup "baseline-tray" "$DIST/baseline-tray/baseline-tray"
    echo "startup_baseline_ms=$STARTUP_MS" >>"$SCRATCH/x.env"
  fi

  step "screenshot of the frozen app"
  screenshot "${SHOT:-$ROOT/build/frozen-tray.png}"
}

if [ "${1:-}" = "__x_phase" ]; then
  SCRATCH=$2 SHOT=${3:-}
  x_phase
  exit 0
fi

# ------------------------------------------------------------------ main

SHOT="" BASELINE=1
while [ $# -gt 0 ]; do
  case $1 in
    --screenshot) SHOT=$(realpath -m "$2"); shift 2 ;;
    --no-baseline) BASELINE=0; shift ;;
    *) fail "unknown option $1 (see the header of $0)" ;;
  esac
done

SCRATCH=$(mktemp -d /tmp/presence-binary.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$ROOT/build"

step "icons match their SVG art"
uv run python scripts/make_icons.py --check

step "pyinstaller build.spec (one folder)"
t0=$(date +%s)
uv run pyinstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" build.spec
BUILD_S=$(($(date +%s) - t0))
[ -x "$BIN" ] || fail "no binary at $BIN"

if [ "$BASELINE" = 1 ]; then
  step "bare tray baseline: same spec, and PyInstaller defaults"
  PRESENCE_SPEC_ENTRY=benchmarks/baseline_tray.py uv run pyinstaller --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath "$WORK/baseline" build.spec
  uv run pyinstaller --noconfirm --log-level WARN --onedir --windowed --name baseline-tray-defaults \
    --distpath "$DIST" --workpath "$WORK/baseline-defaults" --specpath "$WORK" \
    benchmarks/baseline_tray.py
fi

VERSION=$(uv run python -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")

step "frozen --version and --self-test, offscreen"
out=$(QT_QPA_PLATFORM=offscreen "$BIN" --version) || fail "--version failed"
echo "$out"
grep -qF "$VERSION" <<<"$out" || fail "--version does not say $VERSION"
out=$(QT_QPA_PLATFORM=offscreen "$BIN" --self-test) || { echo "$out"; fail "self-test failed offscreen"; }
echo "$out"
grep -q "(frozen;" <<<"$out" || fail "self-test did not run frozen"

: >"$SCRATCH/x.env"
dbus-run-session -- "$0" __x_phase "$SCRATCH" "$SHOT" 2> >(grep -v "Failed to set fd limit" >&2)
# shellcheck disable=SC1091
source "$SCRATCH/x.env"

step "sizes"
size_mb() { du -sm "$1" | cut -f1; }
APP_MB=$(size_mb "$DIST/$NAME")
tar -C "$DIST" -czf "$ROOT/build/$NAME-$VERSION-linux-x86_64.tar.gz" "$NAME"
TGZ_MB=$(du -m "$ROOT/build/$NAME-$VERSION-linux-x86_64.tar.gz" | cut -f1)
{
  echo "presence-desktop $VERSION, Linux one-folder binary (PyInstaller, built in ${BUILD_S} s)"
  echo "  folder:            ${APP_MB} MB   (dist/$NAME)"
  echo "  release .tar.gz:   ${TGZ_MB} MB"
  if [ "$BASELINE" = 1 ]; then
    BASE_MB=$(size_mb "$DIST/baseline-tray")
    DEF_MB=$(size_mb "$DIST/baseline-tray-defaults")
    echo "  bare tray, same spec:           ${BASE_MB} MB  -> app is $(awk -v a="$APP_MB" -v b="$BASE_MB" 'BEGIN {printf "%.2f", a / b}')x"
    echo "  bare tray, PyInstaller defaults: ${DEF_MB} MB"
  fi
  echo "  start-up to tray icon docked (Xvfb + trayer, median of $RUNS): ${startup_app_ms:?} ms"
  if [ -n "${startup_baseline_ms:-}" ]; then
    echo "  bare tray start-up, same conditions: ${startup_baseline_ms} ms"
  fi
} | tee "$REPORT"
