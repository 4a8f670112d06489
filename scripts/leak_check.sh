#!/usr/bin/env bash
# Runs the examples and the stress example under valgrind memcheck and
# fails on any definitely-lost byte (or any memory error). Installs
# valgrind from the OS packages if it is missing. Workloads are scaled down:
# valgrind runs code ~20-50x slower.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "leak_check: installing valgrind"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq valgrind
fi

cargo build --release --examples --quiet
status=0
for example in examples/*.rs; do
    name=$(basename "$example" .rs)
    bin="target/release/examples/$name"
    args=()
    [ "$name" = stress ] && args=(1)
    log=$(mktemp)
    if valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
        --error-exitcode=1 "$bin" "${args[@]}" >/dev/null 2>"$log"; then
        if grep -q 'All heap blocks were freed' "$log"; then
            lost="definitely lost: 0 bytes (all heap blocks freed)"
        else
            lost=$(grep -Eo 'definitely lost: [0-9,]+ bytes in [0-9,]+ blocks' "$log")
        fi
        echo "leak_check: $name: ok ($lost)"
    else
        echo "leak_check: $name: FAILED"
        cat "$log"
        status=1
    fi
    rm -f "$log"
done
exit $status
