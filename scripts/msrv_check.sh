#!/usr/bin/env bash
# Builds the library with its minimum supported Rust version, the
# `rust-version` of Cargo.toml (MSRV_TOOLCHAIN overrides it).
#
# The library alone, not the workspace: cargo of that age can read neither
# this repository's lockfile (format v4) nor the manifests of the newest
# versions of the dev-dependencies and benchmark peers. So the check copies
# the library's sources and a manifest without [workspace] and
# dev-dependencies into a temporary directory, resolves its lockfile there
# with the current cargo, choosing the newest dependency versions whose own
# rust-version the MSRV satisfies (CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS
# =fallback), writes that lockfile in format v3 (the same content as v4 for
# registry-only dependencies), and builds it with the old toolchain.
#
# Exit status: 0 built (or, with MSRV_SKIP_IF_UNAVAILABLE=1, the toolchain
# could not be installed: a clear SKIPPED line is printed), 1 the build
# failed.
set -euo pipefail
cd "$(dirname "$0")/.."

msrv=${MSRV_TOOLCHAIN:-$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)}
if [ -z "$msrv" ]; then
    echo "msrv_check: no rust-version in Cargo.toml" >&2
    exit 1
fi

if ! rustup run "$msrv" rustc --version >/dev/null 2>&1; then
    echo "msrv_check: installing Rust $msrv (minimal profile)"
    if ! timeout 300 rustup toolchain install "$msrv" --profile minimal --no-self-update; then
        if [ "${MSRV_SKIP_IF_UNAVAILABLE:-0}" = 1 ]; then
            echo "msrv_check: SKIPPED: rustup could not install Rust $msrv (its download server is unreachable?); the library was NOT built with its MSRV"
            exit 0
        fi
        echo "msrv_check: rustup could not install Rust $msrv" >&2
        exit 1
    fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r src "$work/"
# The manifest without the tables that a plain library build does not need
# (the workspace, dev-dependencies, the cfg(loom) model checker, lints that
# old cargo does not know).
awk '
    /^\[/ { keep = ($0 !~ /^\[(workspace|profile|lints|target\.[^]]*dev-dependencies|target\..cfg\(loom\)|dev-dependencies|\[bench|\[test|\[example|package\.metadata)/) }
    keep
' Cargo.toml > "$work/Cargo.toml"
# Only the library target: examples, tests and benches are not copied.
printf '\n[lib]\npath = "src/lib.rs"\n' >> "$work/Cargo.toml"
sed -i '/^include *=/,/^\]/d; /^readme *=/d' "$work/Cargo.toml"

(
    cd "$work"
    CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo generate-lockfile --quiet
    sed -i 's/^version = 4$/version = 3/' Cargo.lock
    echo "msrv_check: dependencies chosen for Rust $msrv:"
    sed -n '/^name = /{N;s/name = "\(.*\)"\nversion = "\(.*\)"/  \1 \2/p}' Cargo.lock
    cargo "+$msrv" build --lib --locked
)
echo "msrv_check: the library builds with Rust $msrv"
