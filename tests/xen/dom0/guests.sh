# Guest helpers for dom0 (sourced by /init and by scenario dom0.sh hooks).
# A scenario's guests are named <scenario>-<role>; the runner reports every one of them.

# guest_create NAME IP: creates a paused PV guest on xenbr0 with $GUEST_VCPUS vCPUs
# (default 1), prints its domid.
guest_create() {
    xl create -p /yasmin/guest.cfg "name=\"$1\"" "vcpus=${GUEST_VCPUS:-1}" \
        "vif=[\"bridge=xenbr0,ip=$2\"]" >>/results/xl.log 2>&1 \
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

# destroy_and_time NAME NODE CASE: destroys guest NAME and times, from the moment Xen
# releases the domain (@releaseDomain; `xl destroy` spends seconds under TCG tearing
# devices down first), until the XenStore node NODE disappears (a survivor's module
# withdrawing its offer shows it has reset the pair and its sockets). Records case CASE
# (ok if within 2 s) and prints the timings.
destroy_and_time() {
    local name=$1 node=$2 case=$3 t0 withdrawn= released reaction info xlpid domid watcher
    local relayer relayed gone_dir=${2%/offer/*}/gone gone_node=${2%/offer/*}/gone/${2##*/}
    local remover
    domid=$(xl domid "$name")
    if ! xenstore-exists "$node"; then
        case_fail "$case" "$node missing before the destroy"
        return
    fi
    rm -f /tmp/released-"$name"
    # @releaseDomain fires for every domain (other guests of the scenario too): the time
    # is the first event after which this domain no longer exists.
    ( xenstore-watch @releaseDomain | while read -r _; do
          t=$(date +%s%N)   # when the event came, not when xl answered
          xl domname "$domid" >/dev/null 2>&1 || { echo "$t" > /tmp/released-"$name"; break; }
      done ) &
    watcher=$!
    # When yasmin-watch relays the death (gone/<p> appears in the survivor's area): splits
    # the reaction into the watcher's part and the survivor module's part.
    rm -f /tmp/relayed-"$name"
    ( xenstore-watch "$gone_dir" | while read -r path; do
          [ "$path" = "$gone_node" ] && { date +%s%N > /tmp/relayed-"$name"; break; }
      done ) &
    relayer=$!
    # When NODE goes, timed by a watch rather than by polling: a poll spawning a XenStore
    # client 20 times a second competed with xenstored and the watcher for dom0's CPU.
    rm -f /tmp/withdrawn-"$name"
    ( xenstore-watch "$node" | while read -r _; do
          t=$(date +%s%N)
          xenstore-exists "$node" || { echo "$t" > /tmp/withdrawn-"$name"; break; }
      done ) &
    remover=$!
    sleep 0.5   # the watches are registered (each fires once at once)
    t0=$(date +%s%N)
    xl destroy "$name" & xlpid=$!
    # Up to 120 s: the debug kernels take over 30 s to tear a domain down. The reaction is
    # measured from the release, so a longer window does not loosen the 2 s bound.
    for _ in $(seq 600); do [ -s /tmp/withdrawn-"$name" ] && break; sleep 0.2; done
    [ -s /tmp/withdrawn-"$name" ] && withdrawn=$(( ($(cat /tmp/withdrawn-"$name") - t0) / 1000000 ))
    wait "$xlpid"
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s /tmp/released-"$name" ] && break; sleep 0.2; done
    pkill -f "xenstore-watch @releaseDomain" 2>/dev/null
    pkill -f "xenstore-watch $gone_dir" 2>/dev/null
    pkill -f "xenstore-watch $node" 2>/dev/null
    kill "$watcher" "$relayer" "$remover" 2>/dev/null
    released=$(( ($(cat /tmp/released-"$name" 2>/dev/null || echo 0) - t0) / 1000000 ))
    relayed=$(( ($(cat /tmp/relayed-"$name" 2>/dev/null || echo 0) - t0) / 1000000 ))
    [ "$relayed" -gt 0 ] || relayed='?'
    reaction=$(( ${withdrawn:-999999} - released ))
    info="domain released at ${released} ms, death relayed at ${relayed} ms, $node gone at ${withdrawn:-?} ms (${reaction} ms after the release)"
    echo "YASMIN-INFO $info"
    if [ -n "$withdrawn" ] && [ "$released" -gt 0 ] && [ "$reaction" -le 2000 ]; then
        case_ok "$case # $info"
    else
        case_fail "$case" "$info"
    fi
}
