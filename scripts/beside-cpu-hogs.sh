#!/usr/bin/env bash
# Runs a command beside CPU-bound processes, as on a busy machine, and ends them after it:
#   bash scripts/beside-cpu-hogs.sh python -m pytest
#   HOGS=4 bash scripts/beside-cpu-hogs.sh python -m pytest -m "not integration"
# Exits with the command's status.
set -uo pipefail
hogs="${HOGS:-2}"
pids=()
end_hogs() {
    if [ "${#pids[@]}" -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null
        wait "${pids[@]}" 2>/dev/null
    fi
}
trap end_hogs EXIT
trap 'exit 130' INT TERM
for _ in $(seq "$hogs"); do
    python3 -c "while True: pass" &
    pids+=("$!")
done
"$@"
