#!/usr/bin/env bash
# WebSocket echo under load: the acceptance kit's ws_load.py (C connections x M
# messages, permessage-deflate offered, every echo checked) against Skitai and
# its peers, one server at a time, server on CPU 0 and client on CPU 1.
# Called by `bench/run.sh ws` (which sets SKITAI_CMD and BACKEND); knobs:
# C (1000), M (20), REPS (3), RAMP (seconds over which connections open; 2,
# ws_load's default: the clients then pace the load; 0: all at once, to
# find each server's ceiling), PEERS ("uvicorn-h11 hypercorn-trio-asgi"), OUT.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
ACCEPTANCE="${SHARED_ACCEPTANCE:-$SHARED/../acceptance}"
VENV="${ANCHORS_VENV:-${TMPDIR:-/tmp}/anchors-venv}"
C="${C:-1000}"; M="${M:-20}"; REPS="${REPS:-3}"; RAMP="${RAMP:-2}"; PORT="${PORT:-18400}"
PEERS="${PEERS:-uvicorn-h11 hypercorn-trio-asgi}"
OUT="${OUT:?where the report goes}"
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/ws-load.XXXXXX")"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export PATH="$VENV/bin:$PATH" PYTHONDONTWRITEBYTECODE=1

declare -A CMDS=(
    [uvicorn-h11]="uvicorn --http h11 --ws wsproto --loop asyncio --backlog 4096 --no-access-log --log-level warning --host 127.0.0.1 --port {PORT} apps:asgi_app"
    [hypercorn-trio-asgi]="hypercorn --config hypercorn.toml --worker-class trio --workers 1 --backlog 4096 --bind 127.0.0.1:{PORT} asgi:apps:asgi_app"
)
SKITAI="skitai-${BACKEND:-asyncio}"
CMDS[$SKITAI]="${SKITAI_CMD:?the skitai command}"

run_server() {  # name: one server, REPS runs of ws_load.py; one TSV line per run
    local name="$1" cmd="${CMDS[$1]//\{PORT\}/$PORT}" pid i
    (cd "$SHARED" && exec setsid taskset -c 0 bash -c "exec $cmd") > "$LOGDIR/$name.log" 2>&1 &
    pid=$!
    for i in $(seq 1 150); do
        [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/")" = 200 ] && break
        sleep 0.2
    done
    for i in $(seq 1 "$REPS"); do
        taskset -c 1 python "$ACCEPTANCE/ws_load.py" "ws://127.0.0.1:$PORT/ws" -c "$C" -m "$M" --ramp "$RAMP" \
            > "$LOGDIR/$name.$i.out" 2>&1 || true
        python3 - "$name" "$LOGDIR/$name.$i.out" <<'PY' >> "$LOGDIR/runs.tsv"
import re, sys
name, path = sys.argv[1], sys.argv[2]
text = open(path).read()
num = lambda pattern: (re.search(pattern, text) or [None, "nan"])[1]
print("\t".join([name, num(r"msgs/s: (\d+)"), num(r"p50=([\d.]+)"), num(r"p99=([\d.]+)"),
                 num(r"opened: (\d+)"), num(r"echoed: (\d+)"), num(r"mismatched: (\d+)"),
                 num(r"broken: (\d+)")]))
PY
    done
    kill -TERM -- "-$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

: > "$LOGDIR/runs.tsv"
for name in $SKITAI $PEERS; do
    echo "== $name" >&2
    run_server "$name"
done

python3 - "$LOGDIR/runs.tsv" "$SKITAI" "$C" "$M" "$REPS" "$RAMP" > "$OUT" <<'PY'
import datetime, statistics, subprocess, sys
path, ours, c, m, reps, ramp = sys.argv[1:]
rows = {}
for line in open(path):
    name, *values = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append([float(v) for v in values])
med = {name: [statistics.median(column) for column in zip(*runs)] for name, runs in rows.items()}
print("# WebSocket echo under load\n")
print(f"`ws_load.py`: {c} connections opened over {ramp} s, {m} messages of ~64 bytes each, "
      f"permessage-deflate offered, every echo checked; medians of {reps} runs. Server on CPU 0, "
      "client on CPU 1.\n")
print("| server | msgs/s | rtt p50 ms | rtt p99 ms | opened | echoed | mismatched | broken |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name, (rate, p50, p99, opened, echoed, bad, broken) in med.items():
    mark = " (new)" if name == ours else ""
    print(f"| {name}{mark} | {rate:.0f} | {p50:.2f} | {p99:.2f} | {opened:.0f} | {echoed:.0f} | {bad:.0f} | {broken:.0f} |")
print(f"\n## Ratios: {ours} / peer (same run)\n")
print("| peer | msgs/s (above 1: faster) | p99 (below 1: better) |")
print("|---|---:|---:|")
for name, values in med.items():
    if name != ours and ours in med:
        print(f"| {name} | {med[ours][0] / values[0]:.2f} | {med[ours][2] / values[2]:.2f} |")
print(f"\ndate: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, "
      f"nproc: {subprocess.check_output(['nproc']).decode().strip()}")
PY
echo "wrote $OUT; logs in $LOGDIR" >&2
