#!/usr/bin/env bash
# Builds the synccontacts images from the static binary with buildah, offline (FROM scratch: no
# registry is contacted), into an image store under target/release-image/ (issue 15):
#
#   tools/release/build-image.sh BINARY
#
# Tags `localhost/synccontacts:job` (the default target: busybox /bin/sh, for GitLab jobs) and
# `localhost/synccontacts:minimal` (no shell), exports each as an OCI archive beside the store
# (what the GitLab pipeline pushes with skopeo), and prints their sizes. Needs buildah, busybox-static
# and ca-certificates (Debian packages). Labels: VERSION from the binary, REVISION from
# CI_COMMIT_SHA or git, SOURCE from CI_PROJECT_URL or the git remote (credentials stripped).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin=$(realpath "$1")
export RELEASE_IMAGE_DIR="${RELEASE_IMAGE_DIR:-$root/target/release-image}"
# shellcheck source=tools/release/lib.sh
. "$here/lib.sh"

ca_bundle=/etc/ssl/certs/ca-certificates.crt
busybox=$(command -v busybox || true)
[ -s "$ca_bundle" ] || { echo "build-image: $ca_bundle missing (apt-get install ca-certificates)" >&2; exit 2; }
case "$(file -b "${busybox:-/nonexistent}" 2>/dev/null)" in
  *"statically linked"*) ;;
  *) echo "build-image: no static busybox (apt-get install busybox-static)" >&2; exit 2 ;;
esac

version=$("$bin" --version | awk '{print $2}')
revision=${CI_COMMIT_SHA:-$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)}
source=${CI_PROJECT_URL:-$(git -C "$root" remote get-url origin 2>/dev/null || echo unknown)}
source=$(printf '%s' "$source" | sed -E 's#^([a-z+]+://)[^/@]*@#\1#') # never a token in a label
# Reproducible timestamps: the commit's time, not the build's.
timestamp=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)

ctx="$RELEASE_IMAGE_DIR/context"
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp" "$ctx/shell/bin"
cp "$here/Containerfile" "$ctx/Containerfile"
install -m 0755 "$bin" "$ctx/rootfs/usr/local/bin/synccontacts"
install -m 0644 "$ca_bundle" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nsynccontacts:x:65532:65532:synccontacts:/tmp:/sbin/nologin\n' \
  >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nsynccontacts:x:65532:\n' >"$ctx/rootfs/etc/group"
chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group"
chmod 1777 "$ctx/rootfs/tmp"
install -m 0755 "$busybox" "$ctx/shell/bin/busybox"
ln -s busybox "$ctx/shell/bin/sh"

build() { # build TARGET TAG
  rbuildah bud --quiet --isolation chroot --timestamp "$timestamp" --target "$1" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg SOURCE="$source" \
    -f "$ctx/Containerfile" -t "$2" "$ctx" >/dev/null
}
started=$SECONDS
rbuildah rm --all >/dev/null # working containers a killed check-image.sh left behind
# `job` first: building it makes `minimal` as an intermediate stage and removes that afterwards,
# which would take a `minimal` tagged earlier with it (seen with buildah 1.28).
build job localhost/synccontacts:job
build minimal localhost/synccontacts:minimal
rbuildah rmi --prune >/dev/null 2>&1 || true # the previous build's images, now untagged
for tag in job minimal; do
  archive="$RELEASE_IMAGE_DIR/synccontacts-$tag.oci.tar"
  rm -f "$archive"
  rbuildah push --quiet localhost/synccontacts:$tag "oci-archive:$archive:synccontacts:$tag"
  echo "== image localhost/synccontacts:$tag: $(rbuildah images --noheading --format '{{.Size}}' localhost/synccontacts:$tag) unpacked, $(stat -c %s "$archive") bytes as a compressed OCI archive" >&2
done
echo "== images built in $((SECONDS - started)) s" >&2
