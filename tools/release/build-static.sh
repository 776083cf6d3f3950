#!/usr/bin/env bash
# Builds the static Linux x86_64 release binary of synccontacts: one binary, no shared library,
# no glibc NSS plugin (issue 15). CI (.ci/run) and the GitLab pipeline (.gitlab-ci.yml) both call
# this script, so what CI proves is what the pipeline ships.
#
#   tools/release/build-static.sh [OUT_DIR]    # default OUT_DIR: target/release-static
#
# Leaves OUT_DIR/bin/synccontacts (stripped) and prints its path. The build IS the `cargo install`
# check: `cargo install --locked --path crates/synccontacts --root OUT_DIR` with the static flags,
# reusing the workspace's target/ directory, so CI compiles the release profile once.
#
# How it is static, and why this way:
# - glibc with `-C target-feature=+crt-static` (no musl target can be installed here). The explicit
#   `--target` keeps build scripts and proc-macros dynamic: with --target, RUSTFLAGS apply to the
#   target's units only (doc.rust-lang.org/cargo/reference/config.html, build.rustflags).
# - `--cfg getrandom_backend="linux_getrandom"`: getrandom 0.3/0.4 find glibc's getrandom() with
#   dlsym(), which is NULL in a static binary, and fall back to opening /dev/urandom, which an
#   empty root filesystem does not have (seen here: uuid panicked "could not retrieve random
#   bytes"). This opt-in backend calls getrandom() directly (getrandom's README, "Opt-in backends"
#   and "/dev/urandom fallback on Linux"); the kernel needs to be 3.17 or newer.
# - feature `hickory-dns`: reqwest resolves names with hickory, which reads /etc/resolv.conf and
#   /etc/hosts itself. glibc 2.36's static getaddrinfo does handle `files` and `dns` without
#   plugins (tried here in an empty chroot), but it still follows the host's /etc/nsswitch.conf and
#   dlopen()s any other module listed there (mdns4_minimal, resolve, myhostname…) built against the
#   host's glibc, which the linker itself warns needs "the shared libraries from the glibc version
#   used for linking". With hickory the binary never enters NSS. Costs measured here: +1.4 MB
#   stripped (14.3 → 15.7 MB) and ~+35 s of CPU in a cold release build (29 more crates).
#   Caveat (reqwest src/dns/hickory.rs): without a readable /etc/resolv.conf, hickory falls back to
#   Google's public resolvers. Containers and runners always have one.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/target/release-static}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# ONE-LINE SWITCH (issue 15): the release ships without crates/synccontacts' default feature `demo`
# (the bundled emulator; in main since 5c0d9b8). On a branch without that feature this flag changes
# nothing. Set it to "" to ship the demo.
demo_features="--no-default-features"

export RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"'
# The shipped binary carries no symbols or debug info (the release profile keeps line tables for
# benchmarks); stripping in rustc saves a strip(1) step and some link time.
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_STRIP=symbols
started=$SECONDS
# shellcheck disable=SC2086 # $demo_features is empty or one flag
cargo install --locked --force --quiet --path "$root/crates/synccontacts" --root "$out" \
  --target x86_64-unknown-linux-gnu $demo_features --features hickory-dns
bin="$out/bin/synccontacts"
echo "== static binary: $bin, $(stat -c %s "$bin") bytes, built in $((SECONDS - started)) s" >&2
echo "$bin"
