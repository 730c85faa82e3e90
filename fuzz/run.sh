#!/usr/bin/env bash
# Run fuzz targets one after another (see docs/fuzzing.md).
#   fuzz/run.sh [SECONDS] [TARGET...]      default: 240 s, every target
# Each run: one libFuzzer job (-jobs=1), corpus in fuzz/corpus/<target> (git-ignored) seeded
# from fuzz/seeds/<target>, the target's dictionary, crashes in fuzz/artifacts/<target>/, and
# the libFuzzer log in fuzz/artifacts/<target>/fuzz-0.log (libFuzzer writes it to the cwd).
set -euo pipefail
FUZZ_DIR="$(cd "$(dirname "$0")" && pwd)"
SECONDS_PER_TARGET="${1:-240}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(inbound_message loudness_log event_pattern scoring_inputs job_settings)

dict_for() {
    case "$1" in
        inbound_message) echo events.dict ;;
        loudness_log) echo loudness.dict ;;
        event_pattern) echo pattern.dict ;;
        scoring_inputs) echo scoring.dict ;;
        job_settings) echo settings.dict ;;
        *) echo "unknown target $1" >&2; exit 2 ;;
    esac
}

export RUSTC_BOOTSTRAP=1 # stable rustc accepts cargo-fuzz's -Z flags
cd "$FUZZ_DIR"
cargo fuzz build --sanitizer none
for t in "${TARGETS[@]}"; do
    dict="$(dict_for "$t")"
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== $t: ${SECONDS_PER_TARGET}s"
    # cwd = the artifacts dir, so the job's fuzz-0.log lands next to any crash it finds
    (cd "artifacts/$t" && "$FUZZ_DIR/target/x86_64-unknown-linux-gnu/release/$t" \
        -max_total_time="$SECONDS_PER_TARGET" -jobs=1 -timeout=10 -rss_limit_mb=2048 \
        -dict="$FUZZ_DIR/dicts/$dict" -artifact_prefix="$FUZZ_DIR/artifacts/$t/" \
        -print_final_stats=1 "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/seeds/$t") || true
    tail -n 25 "artifacts/$t/fuzz-0.log"
done
