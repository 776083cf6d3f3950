#!/usr/bin/env bash
# Publishes what .ci/run built, from GitLab CI (.gitlab-ci.yml), using GitLab's predefined
# variables (docs.gitlab.com, ci/variables/predefined_variables):
#
#   tools/release/publish.sh image    # both images to $CI_REGISTRY_IMAGE, tagged with the commit SHA
#                                     # and, on a tag, with the version; digests → target/release.env
#   tools/release/publish.sh binary   # on a tag: the static binary and its SHA-256 to the project's
#                                     # generic package registry, synccontacts/<version>/…
#
# The version is the tag without a leading "v", and must be the binary's own version (a tag that
# disagrees with Cargo.toml would publish a mislabelled release). Writes VERSION, IMAGE_DIGEST and
# IMAGE_MINIMAL_DIGEST to target/release.env for the release job (artifacts:reports:dotenv).
# Tools: skopeo (image), curl (binary). REGISTRY_TLS_VERIFY=false only for a rehearsal registry on
# loopback.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/target/release-static/bin/synccontacts"
images="$root/target/release-image"
env_file="$root/target/release.env"
asset=synccontacts-linux-x86_64

bin_version=$("$bin" --version | awk '{print $2}')
version=""
if [ -n "${CI_COMMIT_TAG:-}" ]; then
  version=${CI_COMMIT_TAG#v}
  if [ "$version" != "$bin_version" ]; then
    echo "publish: tag $CI_COMMIT_TAG names version $version, but the binary is $bin_version (Cargo.toml)" >&2
    exit 1
  fi
fi
mkdir -p "$images"
touch "$env_file"
note() { # note KEY VALUE — one line of the dotenv file, replacing an older value
  grep -v "^$1=" "$env_file" >"$env_file.tmp" || true
  echo "$1=$2" >>"$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
}
[ -z "$version" ] || note VERSION "$version"

case "${1:-}" in
  image)
    : "${CI_REGISTRY:?}" "${CI_REGISTRY_USER:?}" "${CI_REGISTRY_PASSWORD:?}" "${CI_REGISTRY_IMAGE:?}" "${CI_COMMIT_SHA:?}"
    tls="--dest-tls-verify=${REGISTRY_TLS_VERIFY:-true}"
    # docs.gitlab.com, user/packages/container_registry/authenticate_with_container_registry:
    # CI_REGISTRY_USER / CI_REGISTRY_PASSWORD, a per-job user with write access to the registry.
    printf '%s' "$CI_REGISTRY_PASSWORD" |
      skopeo login --tls-verify="${REGISTRY_TLS_VERIFY:-true}" --username "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
    for variant in job minimal; do
      suffix=""
      key=IMAGE_DIGEST
      if [ "$variant" = minimal ]; then suffix=-minimal; key=IMAGE_MINIMAL_DIGEST; fi
      archive="oci-archive:$images/synccontacts-$variant.oci.tar:synccontacts:$variant"
      skopeo copy --quiet "$tls" --digestfile "$images/$variant.digest" "$archive" \
        "docker://$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA$suffix"
      if [ -n "$version" ]; then
        skopeo copy --quiet "$tls" "$archive" "docker://$CI_REGISTRY_IMAGE:$version$suffix"
      fi
      digest=$(cat "$images/$variant.digest")
      note "$key" "$digest"
      echo "pushed $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA$suffix${version:+ and :$version$suffix} = $CI_REGISTRY_IMAGE@$digest"
    done
    ;;
  binary)
    : "${CI_API_V4_URL:?}" "${CI_PROJECT_ID:?}" "${CI_JOB_TOKEN:?}"
    [ -n "$version" ] || { echo "publish binary: only on a tag (CI_COMMIT_TAG)" >&2; exit 1; }
    url="$CI_API_V4_URL/projects/$CI_PROJECT_ID/packages/generic/synccontacts/$version"
    (cd "$(dirname "$bin")" && sha256sum synccontacts | sed "s/synccontacts\$/$asset/") >"$images/$asset.sha256"
    # docs.gitlab.com, user/packages/generic_packages: PUT …/packages/generic/<name>/<version>/<file>,
    # authenticated with the job token in a JOB-TOKEN header. Files one after another, as documented.
    for f in "$bin:$asset" "$images/$asset.sha256:$asset.sha256"; do
      curl --fail-with-body --silent --show-error --header "JOB-TOKEN: $CI_JOB_TOKEN" \
        --upload-file "${f%%:*}" "$url/${f##*:}"
      echo
    done
    echo "uploaded $url/$asset"
    ;;
  *)
    echo "usage: $0 image|binary" >&2
    exit 2
    ;;
esac
