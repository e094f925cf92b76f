# Guest helpers for dom0 (sourced by /init and by scenario dom0.sh hooks).
# A scenario's guests are named <scenario>-<role>; the runner reports every one of them.

# guest_create NAME IP [TYPE]: creates a paused guest of TYPE (pv, the default, or pvh) on
# xenbr0 with $GUEST_VCPUS vCPUs (default 1), prints its domid.
guest_create() {
    # PV is the configuration's own type: only PVH is passed on.
    local type=
    [ "${3:-pv}" = pv ] || type="type=\"$3\""
    # A PVH guest runs on Xen's shadow paging, not on the emulated CPU's nested paging:
    # with hardware-assisted paging, PVH guests triple-faulted at random under QEMU's
    # emulated SVM (in pvclock_clocksource_read, or before /init); with shadow paging, 4
    # of 4 PVH-PV scenarios passed (2026-12-07), slower (tools 110 s instead of 46).
    local hap=
    [ "${3:-pv}" = pv ] || hap="hap=0"
    xl create -p /yasmin/guest.cfg "name=\"$1\"" ${type:+"$type"} ${hap:+"$hap"} "vcpus=${GUEST_VCPUS:-1}" \
        "vif=[\"bridge=xenbr0,ip=$2,script=/yasmin/vif-bridge-light\"]" >>/results/xl.log 2>&1 \
        && xl domid "$1"
}

# guest_assign DOMID SCENARIO ROLE PEER_DOMID SELF_IP PEER_IP SHARED SCRIPT_CASE:
# the keys guest/init reads to know what to run.
guest_assign() {
    local b=/local/domain/$1/yasmin-test
    xenstore-write "$b/domid" "$1" "$b/scenario" "$2" "$b/scenario-dir" "/yasmin/scenarios/$2" \
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

# stamp_when FILE WATCH COND: in the background, writes to FILE the time (ns) of the first
# event of the XenStore watch WATCH after which COND, a shell command that may use the
# event's path as $path, succeeds. Timing by watches, not polls: a poll spawning XenStore
# clients many times a second competes with xenstored and the watcher for dom0's CPU.
stamp_when() {
    rm -f "$1"
    ( xenstore-watch "$2" | while read -r path; do
          t=$(date +%s%N)   # when the event came, not when COND answered
          eval "$3" && { echo "$t" > "$1"; break; }
      done ) &
}

# destroy_and_time NAME NODE CASE: destroys guest NAME and times, from the moment Xen
# releases the domain (@releaseDomain; `xl destroy` spends seconds under TCG tearing
# devices down first), until the XenStore node NODE disappears (a survivor's module
# withdrawing its offer shows it has reset the pair and its sockets). Records case CASE
# (ok if within 2 s) and prints the timings, with the moment yasmin-watch relayed the
# death (gone/<p> in the survivor's area): the watcher's part and the survivor's part.
destroy_and_time() {
    local name=$1 node=$2 case=$3 t0 withdrawn= released relayed reaction info xlpid domid w
    local gone_dir=${2%/offer/*}/gone gone_node=${2%/offer/*}/gone/${2##*/}
    local f=/tmp/timing-$1
    domid=$(xl domid "$name")
    if ! xenstore-exists "$node"; then
        case_fail "$case" "$node missing before the destroy"
        return
    fi
    # @releaseDomain fires for every domain (other guests of the scenario too): the time
    # is the first event after which this domain no longer exists.
    stamp_when "$f-released" @releaseDomain '! xl domname "$domid" >/dev/null 2>&1'
    stamp_when "$f-relayed" "$gone_dir" '[ "$path" = "$gone_node" ]'
    stamp_when "$f-withdrawn" "$node" '! xenstore-exists "$node"'
    sleep 0.5   # the watches are registered (each fires once at once)
    t0=$(date +%s%N)
    xl destroy "$name" & xlpid=$!
    # Up to 120 s: the debug kernels take over 30 s to tear a domain down. The reaction is
    # measured from the release, so a longer window does not loosen the 2 s bound.
    for _ in $(seq 600); do [ -s "$f-withdrawn" ] && break; sleep 0.2; done
    wait "$xlpid"
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$f-released" ] && break; sleep 0.2; done
    for w in @releaseDomain "$gone_dir" "$node"; do pkill -f "xenstore-watch $w" 2>/dev/null; done
    ms() { echo $(( ($(cat "$f-$1" 2>/dev/null || echo 0) - t0) / 1000000 )); }
    released=$(ms released) relayed=$(ms relayed)
    [ -s "$f-withdrawn" ] && withdrawn=$(ms withdrawn)
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

# save_and_restore GUEST: for dom0.sh hooks: `xl save` GUEST (writes `saved` to the
# scenario's shared directory once the old domain is gone), then `xl restore` it as a new
# domain, which may use the shared directory; `restored` and `new-domid` are written,
# and `ipmap-updated` once the watcher's IPv4 map names the new domid (GUEST's address
# from its `self-ip` key). Cases: xl-save, old-domain-gone, xl-restore,
# restored-has-new-domid, ipmap-follows-new-domid. Sets $new.
save_and_restore() {
    local g=$1 old img ip node t0
    old=$(xl domid "$g")
    img=/tmp/$g.save
    ip=$(xenstore-read "/local/domain/$old/yasmin-test/self-ip")
    node=/local/domain/0/data/yasmin-watch/ipmap/$(echo "$ip" | tr . -)
    t0=$(date +%s%N)
    check xl-save xl save "$g" "$img"
    echo "# xl save took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    check old-domain-gone sh -c "! xl domname $old >/dev/null 2>&1"
    xenstore-write "$SHARED_XS/saved" 1
    [ -z "${BEFORE_RESTORE:-}" ] || $BEFORE_RESTORE
    t0=$(date +%s%N)
    check xl-restore xl restore "$img"
    echo "# xl restore took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    rm -f "$img"
    new=$(xl domid "$g")
    check restored-has-new-domid test -n "$new" -a "$new" != "$old"
    # The new domain may read and write the shared directory (nodes made before included).
    xenstore-chmod -r "$SHARED_XS" n0 "b$GUEST1_DOMID" "b$new"
    xenstore-write "$SHARED_XS/new-domid" "$new"
    xenstore-write "$SHARED_XS/restored" 1
    # The watcher's IPv4 map (what the preload library routes by) follows the new domid.
    check ipmap-follows-new-domid retry 60 sh -c "[ \"\$(xenstore-read $node 2>/dev/null)\" = $new ]"
    echo "# ipmap $ip -> $(xenstore-read "$node" 2>/dev/null)"
    xenstore-write "$SHARED_XS/ipmap-updated" 1
}
