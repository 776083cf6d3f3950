#!/usr/bin/env bash
# Proves that the static binary runs on a machine with nothing on it (issue 15):
#
#   tools/release/check-static.sh BINARY GRAPH_EMULATOR [WORKDIR]
#
# 1. ldd and file(1) say it is statically linked.
# 2. A whole `synccontacts sync` from inside an empty root filesystem (a chroot: we run as root)
#    holding only the binary, the emulator's CA file and /etc/resolv.conf, against
#    `graph-emulator serve --tls` running outside; exit 0, and the emulator's state shows the sync.
#    Graph and login URLs name `localhost`, which the certificate covers.
# 3. Name resolution inside that root, with no glibc NSS plugin: a name found only in the chroot's
#    /etc/hosts, then a name known only to a DNS server named in the chroot's /etc/resolv.conf
#    (tools/release/fake_dns.py on 127.0.0.35:53), each reaching the emulator: the TLS handshake
#    fails on the certificate's name (issued for 127.0.0.1 and localhost only), which can only
#    happen once the name resolved to the emulator's address and the connection was made.
# The chroot's /etc/resolv.conf always names the loopback server, so no lookup leaves the machine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin=$(realpath "$1")
emulator=$(realpath "$2")
work="${3:-$(dirname "$bin")/../check-static}"
# shellcheck source=tools/release/lib.sh
. "$here/lib.sh"

chroot_cmd=$(command -v chroot)
dns_addr=127.0.0.35
DNS_PID=
cleanup() {
  stop_emulator
  if [ -n "$DNS_PID" ]; then kill "$DNS_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "== 1. linkage"
ldd_out=$(ldd "$bin" 2>&1 || true)
echo "ldd: $ldd_out"
case "$ldd_out" in
  *"not a dynamic executable"* | *"statically linked"*) ;;
  *) echo "FAIL: ldd lists shared libraries" >&2; exit 1 ;;
esac
file_out=$(file -b "$bin")
echo "file: $file_out"
case "$file_out" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) echo "FAIL: file(1) does not say statically linked" >&2; exit 1 ;;
esac
if [[ "$file_out" == *"not stripped"* ]]; then echo "FAIL: the binary is not stripped" >&2; exit 1; fi
echo "size: $(stat -c %s "$bin") bytes (stripped)"

rm -rf "$work"
mkdir -p "$work/root/etc"
work=$(cd "$work" && pwd)
start_emulator "$emulator" "$work"
config=$(config_json "$work/scenario.json")
python3 "$here/fake_dns.py" "$dns_addr" graph.dns.test >"$work/dns.log" 2>&1 &
DNS_PID=$!

# The empty root: the binary, the CA file, the resolver's configuration. No /dev, /proc, /lib.
root="$work/root"
cp "$bin" "$root/synccontacts"
cp "$work/ca.pem" "$root/ca.pem"
echo "nameserver $dns_addr" >"$root/etc/resolv.conf"
echo "contents of the root: $(cd "$root" && find . -mindepth 1 | sort | tr '\n' ' ')"

in_root() { # in_root HOST ARGS... — the binary in the root, nothing inherited from this environment
  local host=$1
  shift
  env -i AUTOMATION_SYNCCONTACTS_CONFIG_JSON="$config" AUTOMATION_SYNCCONTACTS_CA_FILE=/ca.pem \
    AUTOMATION_SYNCCONTACTS_LOGIN_URL="https://$host:$EMU_PORT" \
    AUTOMATION_SYNCCONTACTS_GRAPH_URL="https://$host:$EMU_PORT" \
    "$chroot_cmd" "$root" /synccontacts "$@"
}

echo "== 2. synccontacts sync in the empty root, against https://localhost:$EMU_PORT"
env -i "$chroot_cmd" "$root" /synccontacts --version
rc=0
in_root localhost sync --report /report.json >"$work/sync.out" 2>"$work/sync.err" || rc=$?
tail -n 2 "$work/sync.out"
if [ "$rc" -ne 0 ]; then
  cat "$work/sync.err" >&2
  echo "FAIL: sync in the empty root exited $rc" >&2
  exit 1
fi
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["exitCode"]==0 and [t["status"] for t in r["tenants"]]==["ok"], r' "$root/report.json"
assert_synced "$work"

# expect_reached HOST WHAT — `check` against HOST must get as far as the emulator's TLS handshake.
expect_reached() {
  local host=$1 what=$2 out
  out=$(in_root "$host" check 2>&1 || true)
  if [[ "$out" != *"certificate not valid for name \"$host\""* ]]; then
    echo "$out" >&2
    echo "FAIL: $host ($what) did not resolve to the emulator" >&2
    exit 1
  fi
  echo "$host ($what) resolved and reached the emulator (its certificate names only localhost)"
}

echo "== 3. name resolution in the empty root, without NSS plugins"
printf '127.0.0.1 graph.hosts.test\n' >"$root/etc/hosts"
expect_reached graph.hosts.test "/etc/hosts"
rm "$root/etc/hosts"
expect_reached graph.dns.test "/etc/resolv.conf → $dns_addr"
grep -q '^query graph.dns.test type 1$' "$work/dns.log" || {
  cat "$work/dns.log" >&2
  echo "FAIL: the DNS server saw no A query" >&2
  exit 1
}
echo "static binary: all checks passed"
