# Guest helpers for dom0 (sourced by /init and by scenario dom0.sh hooks).
# A scenario's guests are named <scenario>-<role>; the runner reports every one of them.

# guest_create NAME IP: creates a paused PV guest on xenbr0, prints its domid.
guest_create() {
    xl create -p /yasmin/guest.cfg "name=\"$1\"" "vif=[\"bridge=xenbr0,ip=$2\"]" >>/results/xl.log 2>&1 \
        && xl domid "$1"
}

# guest_assign DOMID SCENARIO ROLE PEER_DOMID SELF_IP PEER_IP SHARED SCRIPT_CASE:
# the keys guest/init reads to know what to run.
guest_assign() {
    local b=/local/domain/$1/yasmin-test
    xenstore-write "$b/scenario" "$2" "$b/scenario-dir" "/yasmin/scenarios/$2" \
        "$b/peer-domid" "$4" "$b/self-ip" "$5" "$b/peer-ip" "$6" \
        "$b/shared" "$7" "$b/script-case" "$8" "$b/role" "$3"
}

# guest_spawn SCENARIO ROLE PEER_DOMID PEER_IP: for dom0.sh hooks: one more guest running
# <role>.sh against PEER_DOMID, with access to the scenario's shared XenStore directory.
# Prints its domid.
guest_spawn() {
    local n d ip
    n=$(cat /run/yasmin-extra-ip 2>/dev/null || echo 200)
    echo $((n + 1)) > /run/yasmin-extra-ip
    ip=198.18.0.$n
    d=$(guest_create "$1-$2" "$ip") || return 1
    guest_assign "$d" "$1" "$2" "$3" "$ip" "$4" "$SHARED_XS" 0
    # shellcheck disable=SC2046
    yasmin-xs set-perms "$SHARED_XS" $(yasmin-xs get-perms "$SHARED_XS") "b$d" >&2
    xl unpause "$1-$2"
    echo "$d"
}
