# Scenario limits, guest 1: connections up to a limit and past it. Ours is small (32-page
# rings, 200 granted pages) so that it is reached at once: as connector, past it our
# connect() fails with ENOBUFS; as acceptor, the peer's connect past it fails with
# ECONNREFUSED. (The per-peer connection limit is tested in `adversary`.) Afterwards
# netfront and a fresh YASMIN connection work, and every counter is back to its baseline.
. /yasmin/lib/case.sh
mark_kernel_log
check module-loaded insmod /yasmin/yasmin.ko ring_pages=32 max_granted_pages=200
sed 's/^/# /' /sys/kernel/debug/yasmin/stats | grep limit_
yasmin-stream-check serve --listen vsock:6600 > /tmp/serve.log 2>&1 &
yasmin-stream-check serve --listen "tcp:$SELF_IP:6601" > /tmp/serve-tcp.log 2>&1 &
check barrier-serving barrier serving 120
check pair-up pair_up "$PEER_DOMID" 60
# Baseline with the pair up: as the lower domid we grant its control page.
baseline_take

# (1) Our grant limit: 200 pages hold the control page and 6 rings of 33 pages
# (directory + 32); the 7th connect() fails with ENOBUFS (105). Each one opened works.
refusals0=$(stat limit_refusals)
yasmin-stream-check fill --connect "vsock:$PEER_CID:6700" --max 64 --hold-secs 2 > /tmp/fill1.log 2>&1
case_result $? grant-limit-open-connections-work
sed 's/^/# fill: /' /tmp/fill1.log
check grant-limit-six-connections grep -qx 'opened=6' /tmp/fill1.log
check grant-limit-enobufs grep -q '^first_errno=105 ' /tmp/fill1.log
check grant-limit-counted stat_is limit_refusals -gt "$refusals0"
check grant-limit-never-passed stat_is grant_pages -le 200
check grants-back-after-fill retry 20 stat_is grant_pages = "$base_grants"
check barrier-grant-limit-done barrier grant-limit-done 120

# (2) Guest 2 connects to us: our accepted sockets' rings (64 + 1 pages: the listener's
# buffer size is vsock's default 256 KiB) reach the grant limit after 3; the 4th is
# refused (RESET "limit": ECONNREFUSED there).
check barrier-peer-limit-done barrier peer-limit-done 180

# (3) After the limits: netfront and a fresh YASMIN connection work.
check netfront-after-limits timeout 60 yasmin-stream-check duplex --connect "tcp:$PEER_IP:6701" --bytes 1048576 --seed 3
check yasmin-after-limits timeout 60 yasmin-stream-check duplex --connect "vsock:$PEER_CID:6700" --bytes 1048576 --seed 4
check barrier-after-limits barrier after-limits 120
baseline_check 20
check withheld-back-to-baseline stat_is withheld_pages = 0
check connections-back-to-baseline retry 10 stat_is connections_live = 0
sed 's/^/# stats: /' /sys/kernel/debug/yasmin/stats
check barrier-done barrier done 120
pkill yasmin-stream-check
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
kernel_log_since_mark | grep yasmin | tail -20 | sed 's/^/# /'
