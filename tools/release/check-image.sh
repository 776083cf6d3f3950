#!/usr/bin/env bash
# Checks the images build-image.sh made, without a container engine (none runs here): their
# configuration (labels, user, entrypoint), then their root filesystems, mounted by buildah and
# entered with chroot as user 65532 — what a runtime would do, minus the namespaces (issue 15):
#
#   tools/release/check-image.sh BINARY GRAPH_EMULATOR
#
# - `minimal`: the entrypoint prints the version; there is no shell.
# - `job`: a GitLab-style job — `/bin/sh -c 'synccontacts sync --report …'` in a build directory —
#   runs a whole sync against graph-emulator (outside, over TLS on localhost) and the emulator's
#   state shows it. The runtime's parts are added to the working container only: /etc/resolv.conf
#   (which runtimes mount), the build directory and the CA file (a CI file variable).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin=$(realpath "$1")
emulator=$(realpath "$2")
export RELEASE_IMAGE_DIR="${RELEASE_IMAGE_DIR:-$root/target/release-image}"
# shellcheck source=tools/release/lib.sh
. "$here/lib.sh"
work="$RELEASE_IMAGE_DIR/check"
rm -rf "$work"
mkdir -p "$work"

containers=()
cleanup() {
  stop_emulator
  local c
  for c in "${containers[@]}"; do rbuildah rm "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

version=$("$bin" --version)
want_version=$(awk '{print $2}' <<<"$version")
# mount_image TAG — sets ROOTFS to the root filesystem of a new working container of the image.
mount_image() {
  local c
  c=$(rbuildah from --quiet "localhost/synccontacts:$1")
  containers+=("$c")
  ROOTFS=$(rbuildah mount "$c")
}
config() { rbuildah inspect --type image --format "$2" "localhost/synccontacts:$1"; }

for tag in minimal job; do
  echo "== localhost/synccontacts:$tag"
  [ "$(config $tag '{{.OCIv1.Config.User}}')" = "65532:65532" ] || fail "$tag: user is not 65532"
  labels=$(config $tag '{{range $k, $v := .OCIv1.Config.Labels}}{{$k}}={{$v}}{{"\n"}}{{end}}')
  grep -qx "org.opencontainers.image.version=$want_version" <<<"$labels" || fail "$tag: version label: $labels"
  grep -Eqx 'org.opencontainers.image.revision=[0-9a-f]{7,40}|org.opencontainers.image.revision=unknown' <<<"$labels" ||
    fail "$tag: revision label: $labels"
  grep -q '^org.opencontainers.image.source=' <<<"$labels" || fail "$tag: no source label"
  echo "$labels" | sed 's/^/  label /'
done

[ "$(config minimal '{{.OCIv1.Config.Entrypoint}}')" = "[/usr/local/bin/synccontacts]" ] ||
  fail "minimal: entrypoint is not the binary"
[ "$(config job '{{.OCIv1.Config.Entrypoint}}')" = "[]" ] || fail "job: has an entrypoint (GitLab needs none)"

mount_image minimal
rootfs=$ROOTFS
[ ! -e "$rootfs/bin/sh" ] || fail "minimal: has a shell"
grep -q '^synccontacts:x:65532:65532:' "$rootfs/etc/passwd" || fail "minimal: no passwd entry for 65532"
[ -s "$rootfs/etc/ssl/certs/ca-certificates.crt" ] || fail "minimal: no CA bundle"
got=$(env -i "$(command -v chroot)" --userspec=65532:65532 "$rootfs" /usr/local/bin/synccontacts --version)
[ "$got" = "$version" ] || fail "minimal: entrypoint --version said '$got'"
echo "minimal: entrypoint as 65532: $got; $(cd "$rootfs" && find . -mindepth 1 | sort | tr '\n' ' ')"

mount_image job
rootfs=$ROOTFS
start_emulator "$emulator" "$work"
config_json "$work/scenario.json" >"$work/config.json"
path=$(config job '{{range .OCIv1.Config.Env}}{{.}}{{"\n"}}{{end}}' | sed -n 's/^PATH=//p')
echo "nameserver 127.0.0.35" >"$rootfs/etc/resolv.conf" # never used: localhost is answered locally
install -d -o 65532 -g 65532 "$rootfs/builds/project"
install -m 0644 "$work/ca.pem" "$rootfs/builds/project/ca.pem"
rc=0
env -i PATH="$path" AUTOMATION_SYNCCONTACTS_CONFIG_JSON="$(cat "$work/config.json")" \
  AUTOMATION_SYNCCONTACTS_CA_FILE=/builds/project/ca.pem \
  AUTOMATION_SYNCCONTACTS_LOGIN_URL="https://localhost:$EMU_PORT" \
  AUTOMATION_SYNCCONTACTS_GRAPH_URL="https://localhost:$EMU_PORT" \
  "$(command -v chroot)" --userspec=65532:65532 "$rootfs" /bin/sh -c \
  'cd /builds/project && synccontacts --version && synccontacts sync --report synccontacts-report.json' \
  >"$work/sync.out" 2>"$work/sync.err" || rc=$?
tail -n 2 "$work/sync.out"
[ "$rc" -eq 0 ] || { cat "$work/sync.err" >&2; fail "job: sync exited $rc"; }
[ "$(stat -c %u "$rootfs/builds/project/synccontacts-report.json")" = 65532 ] || fail "job: report not written by 65532"
assert_synced "$work"
echo "images: all checks passed"
