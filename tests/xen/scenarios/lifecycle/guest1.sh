# Scenario lifecycle, guest 1: the peer that stays. A transfer in each direction runs
# with guest 2 when dom0 saves it: both must end at once with an error (no hang), and
# everything they held here must be released before guest 2 comes back. After the
# restore, guest 2 has a new domid and CID: its listener (kept across the save) and new
# connections both ways work, a preloaded TCP client reaches it over YASMIN, and the old
# CID is refused. Then a checkpoint (`xl save -c`, a cancelled suspend: the same domain
# resumes). Then dom0 restarts the watcher: a transfer across it completes, and a new
# pair is set up through the new watcher. Last, guest 2 plays a wedged module.
. /yasmin/lib/case.sh
. /yasmin/lib/transfers.sh
setup 7001 "vsock:$PEER_CID:7002" 1
check guest2-saved xs_wait saved 600
# The save ended both connections with an error; nothing of them is left here.
transfer_reset out transfer-to-guest2
check no-connection-left retry 30 stat_is connections_live = 0
baseline_zero
baseline_check 30
xs_signal checked-saved
check guest2-restored xs_wait restored 600
# Guest 2's listener from before the save serves the new CID.
peer_moved restored-serving
# A TCP client under the preload library, to guest 2's IP: the watcher's IPv4 map routes
# it to the new CID, over YASMIN, to guest 2's preloaded listener from before the save.
check ipmap-updated xs_wait ipmap-updated 120
head -c 200000 /dev/urandom > /tmp/pre.in
# (-t: how long socat waits for the echo once its input ended; it exits as soon as the
# server closes. A CI run once got a short echo with -t 5 on a slow machine.)
LD_PRELOAD=/yasmin/lib/libyasmin_preload.so YASMIN_PRELOAD_LOG=1 timeout 100 socat -t 60 - "TCP:$PEER_IP:7004" < /tmp/pre.in > /tmp/pre.out 2> /tmp/pre.err
check preloaded-tcp-after-restore test $? = 0
sed 's/^/# preload: /' /tmp/pre.err | head -3
echo "# echo: $(wc -c < /tmp/pre.out) of 200000 bytes back; $(cmp /tmp/pre.in /tmp/pre.out 2>&1 | head -1)"
check preloaded-tcp-echo-intact cmp -s /tmp/pre.in /tmp/pre.out
check preloaded-tcp-went-to-new-cid grep -q "vsock CID $new_cid port" /tmp/pre.err
check old-cid-refused sh -c "! timeout 30 yasmin-stream-check latency --connect vsock:$old_cid:7002 --count 1 --max-ms 30000"
# A checkpoint of guest 2 (`xl save -c`: it resumes as the same domain): its
# connections are reset all the same, its CID stays, and its listener serves again.
transfer_start k "vsock:$new_cid:7002" 6
transfers_up checkpoint
check guest2-checkpointed xs_wait checkpointed 900
transfer_reset k transfer-across-checkpoint
check barrier-checkpoint-serving barrier checkpoint-serving 300
check after-checkpoint-kept-listener yasmin-stream-check duplex --connect "vsock:$new_cid:7002" --bytes 16777216 --seed 7

# Watcher restart: a transfer running across it completes; then guest 2 reloads YASMIN and
# the new pair is set up through the restarted watcher.
rm -f /tmp/w.rc
( yasmin-stream-check duplex --connect "vsock:$new_cid:7002" --bytes 67108864 --seed 5 > /tmp/w.log 2>&1; echo $? > /tmp/w.rc ) &
check watcher-transfer-running retry 30 stat_is connections_live -ge 1
xs_signal restart-watcher
check watcher-restarted xs_wait watcher-restarted 300
check transfer-across-watcher-restart-ended retry 300 test -f /tmp/w.rc
check transfer-across-watcher-restart-intact test "$(cat /tmp/w.rc)" = 0
sed 's/^/# across restart: /' /tmp/w.log | tail -2
xs_signal transfer-done
check guest2-reloaded xs_wait reloaded 300
check new-pair-after-watcher-restart retry 20 yasmin-stream-check latency --connect "vsock:$new_cid:7002" --count 1 --max-ms 30000

# A wedged peer: guest 2's module stops reading and answering on its channel with us
# while its domain lives (test hook `wedge`). The pair's liveness check (a PING after
# 5 s of silence, a reset 10 s later) ends a transfer to it with ECONNRESET, and a new
# connect fails at the handshake deadline instead of waiting for its timeout.
transfer_start wedge "vsock:$new_cid:7002" 11
check wedge-transfer-running retry 30 stat_is connections_live -ge 1
xs_signal wedge-me
check guest2-wedged xs_wait wedged 120
t0=$(date +%s)
transfer_reset wedge transfer-to-wedged-peer
echo "# transfer reset $(( $(date +%s) - t0 )) s after the wedge"
check liveness-reset-counted stat_is liveness_resets -ge 1
check liveness-reset-logged sh -c "dmesg | grep -q 'no answer for [0-9]* ms, resetting the channel'"
t0=$(date +%s)
timeout 60 yasmin-stream-check latency --connect "vsock:$new_cid:7002" --count 1 --max-ms 60000 > /tmp/wc.log 2>&1
check connect-to-wedged-peer-fails test $? != 0
echo "# connect to the wedged peer failed after $(( $(date +%s) - t0 )) s: $(tail -1 /tmp/wc.log)"
check connect-to-wedged-peer-not-timed-out sh -c "! grep -q 'timed out' /tmp/wc.log"
xs_signal wedge-checked
check barrier-done barrier done 300
check no-connection-left-at-end retry 30 stat_is connections_live = 0
kill $srv; wait $srv
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
