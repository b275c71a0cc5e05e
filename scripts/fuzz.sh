#!/usr/bin/env bash
# fuzz.sh -- runs the libFuzzer targets built by `make fuzz-bins`.
#
#   scripts/fuzz.sh check DIR          replay every target's corpus once
#   scripts/fuzz.sh run DIR TARGET [SECS]
#                                      explore TARGET for SECS (default 60);
#                                      FUZZ_WORK=dir keeps the tree's corpus
#                                      read-only (docs/fuzzing.md)
#
# Corpora live in tests/fuzz/corpus/<target>/; wa_signature reads the
# WhatsApp webhook corpus (its inputs are raw bodies too). Targets run from
# the repository root (nlp_match loads bots/demo.yaml).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
mode=${1:-check}
dir=${2:-build-fuzz/fuzz}

corpus_of() {
    case "$1" in
    wa_signature) echo tests/fuzz/corpus/wa_webhook ;;
    *) echo "tests/fuzz/corpus/$1" ;;
    esac
}

if [ "$mode" = run ]; then
    t=${3:?usage: fuzz.sh run DIR TARGET [SECS]}
    secs=${4:-60}
    # FUZZ_WORK=dir: what the run finds goes to dir/TARGET (crashers to
    # dir/TARGET-crash-*), the corpus in the tree is only read.
    if [ -n "${FUZZ_WORK:-}" ]; then
        mkdir -p "$FUZZ_WORK/$t"
        exec "$dir/fuzz_$t" -max_total_time="$secs" -dict=tests/fuzz/json.dict \
            -print_final_stats=1 -artifact_prefix="$FUZZ_WORK/$t-" "$FUZZ_WORK/$t" "$(corpus_of "$t")"
    fi
    exec "$dir/fuzz_$t" -max_total_time="$secs" -dict=tests/fuzz/json.dict "$(corpus_of "$t")"
fi

passed=0
failed=0
for bin in "$dir"/fuzz_*; do
    case "$bin" in *.d) continue ;; esac
    t=$(basename "$bin")
    t=${t#fuzz_}
    corpus=$(corpus_of "$t")
    if "$bin" -runs=0 "$corpus" >"/tmp/fuzz-check-$t.log" 2>&1; then
        echo "PASS fuzz $t ($(find "$corpus" -type f | wc -l) inputs)"
        passed=$((passed + 1))
    else
        echo "FAIL fuzz $t"
        tail -30 "/tmp/fuzz-check-$t.log"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
