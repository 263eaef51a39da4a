#!/usr/bin/env bash
# Audits Cargo.lock against the RustSec advisory database offline: `cargo audit` with a local
# snapshot of rustsec/advisory-db and no fetching. The snapshot is the shared one next to the
# repository, ../shared/advisory-db (also found next to the main checkout when this is a git
# worktree elsewhere); KEYLINK_ADVISORY_DB names another. Ignored advisories, each with its
# reason: .cargo/audit.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

db="${KEYLINK_ADVISORY_DB:-}"
if [[ -z "$db" ]]; then
    db="../shared/advisory-db"
    if [[ ! -d "$db/crates" ]]; then
        # A worktree outside the main checkout's directory: look beside the main checkout.
        common="$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)"
        if [[ -n "$common" && -d "$(dirname "$common")/../shared/advisory-db/crates" ]]; then
            db="$(dirname "$common")/../shared/advisory-db"
        fi
    fi
fi
if [[ ! -d "$db/crates" ]]; then
    echo "audit: no advisory database at $db (a snapshot of https://github.com/rustsec/advisory-db, with its crates/ directory); put one there or set KEYLINK_ADVISORY_DB to one" >&2
    exit 1
fi
if ! cargo audit --version >/dev/null 2>&1; then
    echo "audit: cargo-audit is not installed; run scripts/install-deps.sh (cargo install cargo-audit --locked)" >&2
    exit 1
fi
if [[ -f "$db/SNAPSHOT.md" ]]; then
    echo "audit: $(head -n 2 "$db/SNAPSHOT.md" | tr '\n' ' ')" >&2
fi
# --stale: a snapshot is as old as its last refresh, and offline there is nothing newer.
exec cargo audit --db "$db" --no-fetch --stale
