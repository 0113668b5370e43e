# What every weights chain shares (sourced by train/make_default_weights.sh and train/make_v0.2_weights.sh): the
# settings a caller may override and `step`, which runs one step, skips one that $RUNS/chain.log records as
# finished, and logs each invocation's wall time.
set -euo pipefail
DATA=${DATA:-../shared/data}
RUNS=${RUNS:-runs/chain}
ASSETS=tracker/assets
THREADS=${THREADS:-2}
mkdir -p "$RUNS"
LOG=$RUNS/chain.log      # one line per step and invocation: name, seconds, finished or interrupted

step() {   # step NAME COMMAND...: run one step, log its wall time (an interrupted invocation logs its part)
    local name=$1 start=$SECONDS
    shift
    if [ -f "$LOG" ] && grep -q "^[^ ]* $name [0-9]* s finished$" "$LOG"; then
        echo "$name: finished before ($LOG), skipped"
        return
    fi
    # Expanded now: the trap runs after this function's locals are gone.
    trap "echo \"\$(date -u +%FT%TZ) $name \$((SECONDS - $start)) s interrupted\" >> \"$LOG\"" EXIT
    "$@"
    trap - EXIT
    echo "$(date -u +%FT%TZ) $name $((SECONDS - start)) s finished" >> "$LOG"
}
