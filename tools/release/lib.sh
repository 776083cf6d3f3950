# Shared by check-static.sh and check-image.sh (sourced, not run): a graph-emulator over TLS on a
# generated scenario, the configuration that points synccontacts at it, and the oracle that says
# whether a sync happened. Everything listens on loopback; the emulator runs outside any chroot.

# start_emulator EMULATOR WORKDIR — generates WORKDIR/scenario.json, starts
# `graph-emulator serve --tls --ca-out WORKDIR/ca.pem`, waits for its one stdout line and sets
# EMU_PID and EMU_PORT. The caller's EXIT trap must call stop_emulator.
start_emulator() {
  local emulator=$1 work=$2
  "$emulator" generate --users 6 --contacts-per-user 5 --pool 18 --edits 0.2 >"$work/scenario.json"
  rm -f "$work/emulator.out" "$work/ca.pem"
  "$emulator" serve --scenario "$work/scenario.json" --tls --ca-out "$work/ca.pem" \
    >"$work/emulator.out" 2>"$work/emulator.log" &
  EMU_PID=$!
  local i
  for i in $(seq 1 100); do
    if grep -q '^listening on https://127.0.0.1:' "$work/emulator.out" 2>/dev/null; then break; fi
    kill -0 "$EMU_PID" 2>/dev/null || { cat "$work/emulator.log" >&2; return 1; }
    sleep 0.1
  done
  EMU_PORT=$(sed -n 's#^listening on https://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$work/emulator.out")
  [ -n "$EMU_PORT" ] || { echo "graph-emulator did not start" >&2; return 1; }
}

stop_emulator() {
  if [ -n "${EMU_PID:-}" ]; then kill "$EMU_PID" 2>/dev/null || true; wait "$EMU_PID" 2>/dev/null || true; fi
  EMU_PID=
}

# config_json SCENARIO — AUTOMATION_SYNCCONTACTS_CONFIG_JSON for the scenario's one tenant and app
# (graph-emulator generate: the hub is hub@<default domain>).
config_json() {
  python3 - "$1" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["tenants"][0]
app = t["apps"][0]
domain = next(d["id"] for d in t["domains"] if d.get("isDefault"))
print(json.dumps({"MicrosoftTenants": [{
    "TenantId": t["tenantId"], "ClientId": app["clientId"], "ClientSecret": app["clientSecret"],
    "GlobalAddressBookUserId": f"hub@{domain}"}]}))
PY
}

# assert_synced WORKDIR — the emulator's state (GET /_emulator/state) is the oracle: the hub's
# "All Contacts" holds one contact per distinct person of the scenario, and so does every licensed
# user's default folder. Nothing here trusts the binary's own account of what it did.
assert_synced() {
  local work=$1
  curl --silent --show-error --fail --cacert "$work/ca.pem" \
    "https://127.0.0.1:$EMU_PORT/_emulator/state" >"$work/state.json"
  python3 - "$work/scenario.json" "$work/state.json" <<'PY'
import json, sys
scenario = json.load(open(sys.argv[1]))["tenants"][0]
state = json.load(open(sys.argv[2]))["tenants"][0]
def email(c):
    return ((c.get("emailAddresses") or [{}])[0].get("address") or "").lower()
people = {email(c) for u in scenario["users"] for c in u.get("contacts", [])}
hub = next(u for u in state["users"] if u["userPrincipalName"].startswith("hub@"))
folder = next((f for f in hub.get("contactFolders", []) if f["displayName"] == "All Contacts"), None)
assert folder is not None, "the hub has no All Contacts folder: no sync happened"
got = {email(c) for c in folder.get("contacts", [])}
assert got == people, f"hub has {len(got)} of {len(people)} people"
for u in state["users"]:
    if u is hub or not u.get("assignedLicenses"):
        continue
    mine = {email(c) for c in u.get("contacts", [])}
    assert mine == people, f"{u['userPrincipalName']} has {len(mine)} of {len(people)} people"
print(f"synced: the hub and every user hold all {len(people)} people")
PY
}

# rbuildah ARGS... — buildah on the release's own image store under target/ (vfs: no overlay
# mounts, works inside an unprivileged container and on this machine alike), so nothing lands in
# the host's /var/lib/containers.
rbuildah() {
  local store="${RELEASE_IMAGE_DIR:?}/store"
  buildah --root "$store/storage" --runroot "$store/run" --storage-driver vfs "$@"
}
