#!/usr/bin/env bash
# bench/host-run without a Xen host: stub xl and xenstore-read on PATH, DRY_RUN=1, and
# check the plan it prints (domids, CIDs, IPs, the shared directory's perms, the pinning
# and each guest's environment), and that it refuses what it must.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
cat > "$stubs/xl" <<'X'
#!/bin/sh
[ "$1" = domid ] || exit 1
case $2 in client) echo 7 ;; server) echo 9 ;; *) echo "no such domain" >&2; exit 1 ;; esac
X
cat > "$stubs/xenstore-read" <<'X'
#!/bin/sh
case $1 in
  /local/domain/0/backend/vif/7/0/ip) echo "10.0.0.7" ;;
  /local/domain/0/backend/vif/9/0/ip) echo "10.0.0.9 10.0.1.9" ;;
  *) exit 1 ;;
esac
X
chmod +x "$stubs/xl" "$stubs/xenstore-read"
out=$(PATH=$stubs:$PATH DRY_RUN=1 GUEST_BIN=/nonexistent "$here/../host-run" client server 2>&1)
echo "$out"
expect() { grep -qF -- "$1" <<< "$out" || { echo "FAIL: missing: $1"; exit 1; }; }
expect "guest 1 = client (domid 7, CID 9, 10.0.0.7), guest 2 = server (domid 9, CID 11, 10.0.0.9)"
expect "would run: xenstore-chmod -r /local/domain/0/yasmin-bench/"
expect "n0 b7 b9"
expect "would run: xl vcpu-pin 7 0 1"
expect "would run: xl vcpu-pin 9 0 0"
expect "root@10.0.0.9 'cd /yasmin/scenarios/bench && PATH=/yasmin/bin:\$PATH YASMIN_ROLE=guest2"
expect "SELF_DOMID=9 SELF_CID=11 SELF_IP=10.0.0.9 PEER_DOMID=7 PEER_CID=9 PEER_IP=10.0.0.7"
expect "SELF_DOMID=7 SELF_CID=9 SELF_IP=10.0.0.7 PEER_DOMID=9 PEER_CID=11 PEER_IP=10.0.0.9"
# Refusals: an unknown domain, the same domain twice, a wrong number of arguments.
! PATH=$stubs:$PATH DRY_RUN=1 "$here/../host-run" client nosuch >/dev/null 2>&1 || { echo "FAIL: accepted an unknown domain"; exit 1; }
! PATH=$stubs:$PATH DRY_RUN=1 "$here/../host-run" client client >/dev/null 2>&1 || { echo "FAIL: accepted one domain twice"; exit 1; }
! PATH=$stubs:$PATH "$here/../host-run" client >/dev/null 2>&1 || { echo "FAIL: accepted one argument"; exit 1; }
echo "host-run dry run: ok"
