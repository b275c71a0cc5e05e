#!/usr/bin/env bash
# fuzz-campaign.sh -- runs libFuzzer targets until each has used a budget
# of CPU time (user+sys), not wall time, so that a run on a shared machine
# counts what the fuzzer really got (docs/fuzzing.md, "Campaign").
#
#   scripts/fuzz-campaign.sh TARGET...    each TARGET until CPU_SECS
#   scripts/fuzz-campaign.sh all          every target built in DIR
#   scripts/fuzz-campaign.sh pick TARGET [N]
#                                         after a campaign: up to N (20) of
#                                         its new inputs that add the most
#                                         coverage to the tree's corpus
#
# Environment (defaults in brackets):
#   FUZZ_DIR    the binaries of `make fuzz-bins` [build-fuzz/fuzz]
#   FUZZ_WORK   new inputs go to FUZZ_WORK/TARGET, artifacts (crash-,
#               leak-, timeout-, oom-) to FUZZ_WORK/TARGET-*; the tree's
#               corpus is only read [/tmp/fuzz-campaign]
#   CPU_SECS    CPU seconds per target [600]
#   CHUNK       wall seconds of one fuzzer run [180]; a target runs in
#               chunks until its CPU time reaches CPU_SECS
#   FUZZ_JOBS   targets at a time with `all` [2]
#   MAX_STOPS   a target stops after this many runs that ended on an
#               artifact (crash, leak, timeout, oom) [3]
#
# Each fuzzer runs under `nice -n 19`, -rss_limit_mb=2048 (and the same
# malloc limit), -timeout=10 per input. Prints per target one line:
#   TARGET cpu_s=.. execs=.. exec_s=.. new_units=.. stops=.. artifacts=..
# and writes it to FUZZ_WORK/TARGET.summary (logs in FUZZ_WORK/TARGET.log,
# one line a chunk in FUZZ_WORK/TARGET.progress).
# Exit status 1 when any target left an artifact.
#
# `pick` merges (-merge=1, with a control file) FUZZ_WORK/TARGET into a copy
# of the tree's corpus; the control file lists, per input, the edges (COV)
# and features (FT) no input merged before it had, the tree's first. It then
# takes greedily the new input (at most PICK_BYTES, 4096) that adds the most
# edges, then features, beyond the tree's corpus and what was already taken,
# until N are taken or none adds an edge or 8 features. They are copied to FUZZ_WORK/picked/TARGET as cov_<sha1> for
# review; moving them into tests/fuzz/corpus/ is left to the reader.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
DIR=${FUZZ_DIR:-build-fuzz/fuzz}
WORK=${FUZZ_WORK:-/tmp/fuzz-campaign}
CPU_SECS=${CPU_SECS:-600}
CHUNK=${CHUNK:-180}
JOBS=${FUZZ_JOBS:-2}
MAX_STOPS=${MAX_STOPS:-3}
export FUZZ_DIR=$DIR FUZZ_WORK=$WORK CPU_SECS CHUNK MAX_STOPS

corpus_of() {
    case "$1" in
    wa_signature) echo tests/fuzz/corpus/wa_webhook ;;
    *) echo "tests/fuzz/corpus/$1" ;;
    esac
}

# stat NAME LOG: the last value libFuzzer printed for stat::NAME (0 if none).
stat_of() {
    local v
    v=$(grep -a "^stat::$1:" "$2" | tail -1 | awk '{print $2}')
    echo "${v:-0}"
}

# One target until its CPU budget is spent.
campaign_one() {
    local t=$1 bin="$DIR/fuzz_$1" corpus cpu=0 execs=0 added=0 stops=0 share=1
    local log="$WORK/$t.log" chunk_log="$WORK/$t.chunk.log" tfile="$WORK/$t.time"
    [ -x "$bin" ] || {
        echo "$t: no binary $bin (make CC=clang FUZZ=1 fuzz-bins)" >&2
        return 2
    }
    corpus=$(corpus_of "$t")
    mkdir -p "$WORK/$t"
    : >"$log"
    while awk -v c="$cpu" -v b="$CPU_SECS" 'BEGIN { exit !(c < b) }'; do
        local left secs rc used
        # the wall time the CPU left needs at the share of a core the last
        # chunk got (at least a tenth), so that the last chunks stay long
        left=$(awk -v c="$cpu" -v b="$CPU_SECS" -v s="$share" \
            'BEGIN { printf "%d", (b - c + 1) / (s < 0.1 ? 0.1 : s) }')
        secs=$((left < CHUNK ? left : CHUNK))
        nice -n 19 /usr/bin/time -f '%U %S' -o "$tfile" \
            "$bin" -max_total_time="$secs" -dict=tests/fuzz/json.dict \
            -print_final_stats=1 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
            -timeout=10 -artifact_prefix="$WORK/$t-" "$WORK/$t" "$corpus" \
            >"$chunk_log" 2>&1
        rc=$?
        cat "$chunk_log" >>"$log"
        used=$(tail -1 "$tfile" | awk '{print $1 + $2}')
        cpu=$(awk -v c="$cpu" -v u="${used:-0}" 'BEGIN { printf "%.1f", c + u }')
        share=$(awk -v u="${used:-0}" -v s="$secs" 'BEGIN { printf "%.2f", u / s }')
        execs=$((execs + $(stat_of number_of_executed_units "$chunk_log")))
        added=$((added + $(stat_of new_units_added "$chunk_log")))
        echo "$(date -u +%T) cpu_s=$cpu execs=$execs exit=$rc" >>"$WORK/$t.progress"
        if [ "$rc" -ne 0 ]; then
            stops=$((stops + 1))
            echo "$t: run stopped (exit $rc) at ${cpu} CPU s:" \
                "$(grep -a -m1 -E 'ERROR|SUMMARY|Test unit written' "$chunk_log")" >&2
            [ "$stops" -ge "$MAX_STOPS" ] && break
        fi
    done
    local artifacts line
    artifacts=$(find "$WORK" -maxdepth 1 -type f -name "$t-*" | wc -l)
    line=$(awk -v t="$t" -v c="$cpu" -v e="$execs" -v a="$added" -v s="$stops" \
        -v f="$artifacts" 'BEGIN { printf "%s cpu_s=%s execs=%d exec_s=%d new_units=%d stops=%d artifacts=%d\n",
        t, c, e, (c > 0 ? e / c : 0), a, s, f }')
    echo "$line" | tee "$WORK/$t.summary"
    [ "$artifacts" -eq 0 ]
}

# Greedy pick over a merge control file (STARTED/FT/COV lines per input).
pick() {
    local t=$1 n=${2:-20} corpus tmp
    corpus=$(corpus_of "$t")
    tmp=$(mktemp -d)
    mkdir -p "$tmp/out" "$WORK/picked/$t"
    cp "$corpus"/* "$tmp/out"/
    nice -n 19 "$DIR/fuzz_$t" -merge=1 -merge_control_file="$tmp/cf" -rss_limit_mb=2048 \
        -timeout=10 "$tmp/out" "$WORK/$t" >"$tmp/merge.log" 2>&1 || {
        tail -20 "$tmp/merge.log" >&2
        rm -rf "$tmp"
        return 1
    }
    python3 - "$tmp/cf" "$n" "${PICK_BYTES:-4096}" "$WORK/picked/$t" <<'PY'
import hashlib, os, shutil, sys
cf, n, max_bytes, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lines = open(cf).read().split("\n")
count, first = int(lines[0]), int(lines[1])  # first: the tree's inputs, merged first
paths = lines[2:2 + count]
ft, cov = {}, {}
for line in lines[2 + count:]:
    parts = line.split()
    if len(parts) >= 2 and parts[0] in ("FT", "COV"):
        (ft if parts[0] == "FT" else cov)[int(parts[1])] = set(map(int, parts[2:]))
base_ft, base_cov, cands = set(), set(), []
for i, p in enumerate(paths):
    if i < first:
        base_ft |= ft.get(i, set())
        base_cov |= cov.get(i, set())
    elif os.path.getsize(p) <= max_bytes:
        cands.append(i)


def gain(i):
    return (len(cov.get(i, set()) - base_cov), len(ft.get(i, set()) - base_ft),
            -os.path.getsize(paths[i]))


taken = []
while len(taken) < n and cands:
    best = max(cands, key=gain)
    g = gain(best)
    if g[0] == 0 and g[1] < 8:
        break
    cands.remove(best)
    base_ft |= ft.get(best, set())
    base_cov |= cov.get(best, set())
    data = open(paths[best], "rb").read()
    name = "cov_" + hashlib.sha1(data).hexdigest()[:12]
    shutil.copyfile(paths[best], os.path.join(out, name))
    taken.append(name)
    print(f"{name} {len(data)} bytes +{g[0]} edges +{g[1]} features")
print(f"picked {len(taken)} into {out}; edges {len(base_cov)}, features {len(base_ft)}")
PY
    rm -rf "$tmp"
}

if [ "${1:-}" = pick ]; then
    pick "${2:?usage: fuzz-campaign.sh pick TARGET [N]}" "${3:-20}"
    exit
fi
if [ "${1:-}" = --one ]; then
    campaign_one "$2"
    exit
fi
[ $# -gt 0 ] || {
    echo "usage: fuzz-campaign.sh TARGET... | all" >&2
    exit 2
}
mkdir -p "$WORK"
if [ "$1" = all ]; then
    set --
    for bin in "$DIR"/fuzz_*; do
        case "$bin" in *.d) continue ;; esac
        t=$(basename "$bin")
        set -- "$@" "${t#fuzz_}"
    done
fi
printf '%s\n' "$@" | xargs -P "$JOBS" -n 1 "$0" --one
