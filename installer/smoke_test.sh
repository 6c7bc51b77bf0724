#!/usr/bin/env bash
# Smoke test of the built app (slow, so not part of `make test`):
#
#   installer/smoke_test.sh            build with installer/build.sh, then test dist/distill-studio/
#   installer/smoke_test.sh --reuse    test the app already in dist/ (build only if it is missing)
#   installer/smoke_test.sh --keep     keep the temp folder (screenshots, runs, logs) for a look
#
# Every check runs the app in a reduced environment, as a user without Python would: `env -i`
# with a fresh HOME, PATH=/usr/bin:/bin (plus a trap folder whose `python`/`python3` record any
# call and fail), no venv, no PYTHONPATH, in a temp folder away from the repo, under Xvfb. Checks:
#   engine_validate   `distill-studio --engine validate` on the bundled demo: exit 0
#   engine_headless   `distill-studio --engine run` of the bundled compressed demo: exit 0,
#                     a `finished` event with status completed; student.onnx, student.int8.onnx
#                     (static int8), report.json, MODEL_CARD.md
#   engine_export_dynamic_int8   `--engine export` of that run with dynamic int8: student.int8.onnx
#   window_run        the window runs it as the Run button does (--run --quit-when-done
#                     --screenshot): exit 0, a completed run in the store, the export files
#   help_menu_demo    the window started bare; keys Alt+H, E, Return (Help → Examples → first
#                     example), F5 (Run): the run completes and exports (xdotool)
#   torchrun          `distill-studio --torchrun … --no-python distill-studio --engine run`:
#                     two CPU processes (gloo): the run says processes 2 and completes
#   no_python_used    nothing called python or python3 from PATH
# Prints one JSON object last: build_seconds, folder_size_mb, checks, passed.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
reuse=0 keep=0
for arg in "$@"; do
  case "$arg" in
    --reuse) reuse=1 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "smoke_test.sh: unknown option '$arg' (options: --reuse, --keep)" >&2; exit 2 ;;
  esac
done
for tool in xvfb-run xdotool; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "smoke_test.sh: needs $tool (Debian/Ubuntu: apt-get install xvfb xdotool)" >&2; exit 2; }
done

app=$repo/dist/distill-studio/distill-studio
build_seconds=null
if [ "$reuse" = 0 ] || [ ! -x "$app" ]; then
  installer/build.sh | tee /tmp/distill-smoke-build.$$ || { echo "smoke_test.sh: the build failed" >&2; exit 1; }
  build_seconds=$(tail -1 /tmp/distill-smoke-build.$$ | sed -n 's/.*"build_seconds": \([0-9]*\).*/\1/p')
  rm -f /tmp/distill-smoke-build.$$
fi
folder_size_mb=$(du -sm "$repo/dist/distill-studio" | cut -f1)

tmp=$(mktemp -d /tmp/distill-smoke.XXXXXX)
[ "$keep" = 1 ] || trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home" "$tmp/cwd" "$tmp/trap" "$tmp/logs"
for name in python python3; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/python-calls.log"\nexit 97\n' "$name" "$tmp" > "$tmp/trap/$name"
  chmod +x "$tmp/trap/$name"
done
# the bundled examples and teachers, copied out (the same relative paths as in the bundle)
bundled=$repo/dist/distill-studio/_internal/assets
mkdir -p "$tmp/project"
cp -r "$bundled/examples" "$bundled/teachers" "$tmp/project/"
demo=$tmp/project/examples/digits-experts.distill.json
compressed=$tmp/project/examples/digits-compressed.distill.json

clean() {  # run a command as a user without Python would
  (cd "$tmp/cwd" && env -i HOME="$tmp/home" PATH="$tmp/trap:/usr/bin:/bin" LANG=C.UTF-8 "$@")
}
in_x() {  # the same, with a virtual screen
  clean xvfb-run -a -s "-screen 0 1400x900x24" "$@"
}
declare -A checks
order=()
check() {  # NAME, then the test command: pass if it exits 0
  local name=$1; shift
  order+=("$name")
  if "$@" > "$tmp/logs/$name.log" 2>&1; then
    checks[$name]=true; echo "smoke_test.sh: $name: pass"
  else
    checks[$name]=false; echo "smoke_test.sh: $name: FAIL (log: $tmp/logs/$name.log)"
    tail -15 "$tmp/logs/$name.log" | sed 's/^/    /'
  fi
}
exported() {  # FOLDER: the export files of the compressed demo are there
  local dir=$1
  for f in student.onnx student.int8.onnx report.json MODEL_CARD.md; do
    [ -s "$dir/$f" ] || { echo "missing $dir/$f"; return 1; }
  done
  echo "exported: $(ls "$dir" | tr '\n' ' ')"
}
completed_in_store() {  # DB: the store holds a completed run (asked through the bundled engine)
  local out
  out=$(clean "$app" --engine runs --json --db "$1") || return 1
  grep -E '"(id|status|run_dir|best_metrics)"' <<<"$out"
  grep -q '"status": *"completed"' <<<"$out"
}

test_engine_validate() { clean "$app" --engine validate "$demo"; }

test_engine_headless() {
  clean "$app" --engine run "$compressed" --run-dir "$tmp/headless-run" --db "$tmp/headless.sqlite" \
    < /dev/null > "$tmp/headless-events.jsonl" || { tail -5 "$tmp/headless-events.jsonl"; return 1; }
  tail -1 "$tmp/headless-events.jsonl"
  tail -1 "$tmp/headless-events.jsonl" | grep -q '"status": *"completed"' &&
    exported "$tmp/headless-run/export" && completed_in_store "$tmp/headless.sqlite"
}

test_window_run() {
  in_x "$app" "$compressed" --run --quit-when-done --db "$tmp/window/runs.sqlite" \
    --screenshot "$tmp/window-run.png" || return 1
  [ -s "$tmp/window-run.png" ] || { echo "no screenshot"; return 1; }
  completed_in_store "$tmp/window/runs.sqlite" &&
    exported "$(dirname "$(find "$tmp/window/runs" -name report.json | head -1)")"
}

test_help_menu_demo() {
  # Xvfb, the bare app, then the keys a person would press; the run goes to the default store
  cat > "$tmp/help-menu.sh" <<EOF
"$app" & pid=\$!
wid=\$(xdotool search --sync --onlyvisible --name "Distill Studio" | head -1)
sleep 3
xdotool windowfocus --sync "\$wid"
xdotool key --delay 400 alt+h e Return
sleep 4
import -window root "$tmp/help-menu-opened.png"
xdotool key F5
for i in \$(seq 1 300); do
  report=\$(find "$tmp/home/.local/share/distill-studio/runs" -name report.json 2>/dev/null | head -1)
  [ -n "\$report" ] && break
  kill -0 \$pid 2>/dev/null || break
  sleep 1
done
sleep 3
import -window root "$tmp/help-menu-done.png"
kill \$pid 2>/dev/null; sleep 1; kill -9 \$pid 2>/dev/null
[ -n "\$report" ] && echo "report: \$report"
EOF
  in_x bash "$tmp/help-menu.sh" || return 1
  completed_in_store "$tmp/home/.local/share/distill-studio/runs.sqlite" &&
    exported "$(dirname "$(find "$tmp/home/.local/share/distill-studio/runs" -name report.json | head -1)")"
}

test_torchrun() {
  sed -e 's/"epochs": 20/"epochs": 2/' "$demo" > "$tmp/project/examples/short.distill.json"
  clean "$app" --torchrun --standalone --nproc_per_node=2 --no-python "$app" --engine run \
    "$tmp/project/examples/short.distill.json" --run-dir "$tmp/torchrun-run" --db "$tmp/torchrun.sqlite" \
    < /dev/null > "$tmp/torchrun-events.jsonl" || { tail -5 "$tmp/torchrun-events.jsonl"; return 1; }
  grep -o '"processes": *[0-9]*' "$tmp/torchrun-events.jsonl" | head -1 | grep -q ': *2$' &&
    tail -1 "$tmp/torchrun-events.jsonl" | grep -q '"status": *"completed"'
}

test_engine_export_dynamic_int8() {  # the Export panel's path: `export` of a finished run
  clean "$app" --engine export "$tmp/headless-run" --out "$tmp/export-dynamic" --quantize int8 &&
    [ -s "$tmp/export-dynamic/student.int8.onnx" ] && ls "$tmp/export-dynamic"
}

test_no_python_used() {
  [ ! -e "$tmp/python-calls.log" ] || { cat "$tmp/python-calls.log"; return 1; }
}

check engine_validate test_engine_validate
check engine_headless test_engine_headless
check engine_export_dynamic_int8 test_engine_export_dynamic_int8
check window_run test_window_run
check help_menu_demo test_help_menu_demo
check torchrun test_torchrun
check no_python_used test_no_python_used

passed=true
json=""
for name in "${order[@]}"; do
  [ "${checks[$name]}" = true ] || passed=false
  json+="${json:+, }\"$name\": ${checks[$name]}"
done
[ "$keep" = 1 ] && echo "smoke_test.sh: kept $tmp (screenshots: window-run.png, help-menu-*.png)"
printf '{"build_seconds": %s, "folder_size_mb": %s, "checks": {%s}, "passed": %s}\n' \
  "$build_seconds" "$folder_size_mb" "$json" "$passed"
[ "$passed" = true ]
