#!/usr/bin/env bash
# Rehearses the GitLab pipeline's publish jobs and the README's install commands on loopback,
# with stand-ins for GitLab (issue 15): Debian's docker-registry (the CNCF distribution registry)
# as $CI_REGISTRY, fake_gitlab_packages.py as the generic package API.
#
#   tools/release/rehearse-publish.sh    # after build-static.sh and build-image.sh
#
# 1. publish.sh image and publish.sh binary, as for a tag v<version>, with GitLab's variables.
# 2. What README "Install" tells a user to do, against those stand-ins: the image by version and
#    by digest (skopeo in place of `docker pull`, as no container engine runs here), the binary
#    downloaded with the README's curl command, its SHA-256 checked, and run.
# 3. A tag that disagrees with the binary's version is refused.
# It proves the requests have the documented shape; it cannot prove GitLab accepts them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/release-static/bin/synccontacts"
work="$root/target/release-rehearsal"
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
wait_for() { # wait_for WHAT COMMAND...
  local what=$1 i
  shift
  for i in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "$what did not start"
}

reg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: "127.0.0.1:$reg_port"}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
wait_for "the registry" curl --fail --silent "http://127.0.0.1:$reg_port/v2/"
token="rehearsal-$RANDOM$RANDOM"
python3 "$here/fake_gitlab_packages.py" 0 "$work/packages" "$token" >"$work/packages.log" 2>&1 &
pids+=($!)
wait_for "the package API" grep -q '^listening on' "$work/packages.log"
pkg_port=$(sed -n 's#^listening on http://127\.0\.0\.1:##p' "$work/packages.log")

version=$("$bin" --version | awk '{print $2}')
export REGISTRY_AUTH_FILE="$work/auth.json" # skopeo login writes here, not in ~/.config
export CI_REGISTRY="127.0.0.1:$reg_port" CI_REGISTRY_USER=gitlab-ci-token CI_REGISTRY_PASSWORD="$token"
export CI_REGISTRY_IMAGE="127.0.0.1:$reg_port/tools/synccontacts" REGISTRY_TLS_VERIFY=false
export CI_COMMIT_SHA="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo 0000000000000000000000000000000000000000)"
export CI_COMMIT_TAG="v$version" CI_API_V4_URL="http://127.0.0.1:$pkg_port/api/v4" CI_PROJECT_ID=42
export CI_JOB_TOKEN="$token"
rm -f "$root/target/release.env"

echo "== 1. publish.sh image, publish.sh binary (tag $CI_COMMIT_TAG)"
bash "$here/publish.sh" image
bash "$here/publish.sh" binary
# shellcheck disable=SC1091
. "$root/target/release.env"
[ "${VERSION:-}" = "$version" ] || fail "release.env: VERSION=${VERSION:-}"
[[ "${IMAGE_DIGEST:-}" == sha256:* && "${IMAGE_MINIMAL_DIGEST:-}" == sha256:* ]] || fail "release.env: no digests"

echo "== 2. the README's install commands against the stand-ins"
digest_of() { skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$1"; }
[ "$(digest_of "$CI_REGISTRY_IMAGE:$version")" = "$IMAGE_DIGEST" ] || fail ":$version is not $IMAGE_DIGEST"
[ "$(digest_of "$CI_REGISTRY_IMAGE:$version-minimal")" = "$IMAGE_MINIMAL_DIGEST" ] || fail ":$version-minimal"
[ "$(digest_of "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA")" = "$IMAGE_DIGEST" ] || fail ":<commit sha>"
skopeo copy --quiet --src-tls-verify=false "docker://$CI_REGISTRY_IMAGE@$IMAGE_DIGEST" "oci:$work/pulled:job"
labels=$(skopeo inspect --config "oci:$work/pulled:job" | python3 -c 'import json,sys; c=json.load(sys.stdin)["config"]; print(c["User"], c["Labels"]["org.opencontainers.image.version"])')
[ "$labels" = "65532:65532 $version" ] || fail "pulled by digest: $labels"
echo "image: :$version = :$CI_COMMIT_SHA = @$IMAGE_DIGEST (user 65532, version label $version); :$version-minimal = @$IMAGE_MINIMAL_DIGEST"
mkdir -p "$work/download" && cd "$work/download"
curl --fail --location --output synccontacts --header "PRIVATE-TOKEN: $token" \
  "$CI_API_V4_URL/projects/$CI_PROJECT_ID/packages/generic/synccontacts/$version/synccontacts-linux-x86_64" \
  2>"$work/curl.err" # its progress meter

curl --fail --location --silent --output synccontacts-linux-x86_64.sha256 --header "JOB-TOKEN: $token" \
  "$CI_API_V4_URL/projects/$CI_PROJECT_ID/packages/generic/synccontacts/$version/synccontacts-linux-x86_64.sha256"
cp synccontacts synccontacts-linux-x86_64 && sha256sum --check --quiet synccontacts-linux-x86_64.sha256
chmod +x synccontacts && [ "$(./synccontacts --version)" = "$("$bin" --version)" ] || fail "downloaded binary"
echo "binary: downloaded, SHA-256 matches, $(./synccontacts --version)"
curl --silent --output /dev/null --write-out '%{http_code}' \
  "$CI_API_V4_URL/projects/$CI_PROJECT_ID/packages/generic/synccontacts/$version/synccontacts-linux-x86_64" |
  grep -qx 401 || fail "the package API served a download without a token"

echo "== 3. a tag that is not the binary's version is refused"
if CI_COMMIT_TAG=v999.0.0 bash "$here/publish.sh" binary 2>"$work/mismatch.err"; then fail "v999.0.0 was published"; fi
grep -q 'but the binary is' "$work/mismatch.err" || fail "$(cat "$work/mismatch.err")"
rm -f "$root/target/release.env"
echo "publish rehearsal: all checks passed"
