# Scenario preload, guest 1: the clients. Unmodified Debian iperf3 with the preload
# library goes over YASMIN (module byte counters move, netfront's barely do); without it,
# over TCP; a preloaded client still reaches a TCP service that is not in the map (dom0's
# bridge address); a preloaded server serves a YASMIN and a TCP client at once; curl
# (non-blocking connect + poll) works through the library.
. /yasmin/lib/case.sh
. /yasmin/scenarios/preload/lib.sh
check module-loaded insmod /yasmin/yasmin.ko
check ipmap-has-peer retry 30 yasmin-xs read "/local/domain/0/data/yasmin-watch/ipmap/$(echo "$PEER_IP" | tr . -)"
# Open the pair's control channel first: vsock's connect timeout (2 s) is shorter than a
# first handshake can take on the emulated CPU.
check pair-up pair_up "$PEER_DOMID" 120
check barrier-loaded barrier loaded 120

# 1. iperf3 with the preload: over YASMIN.
check barrier-iperf-preload-serving barrier iperf-preload-serving 120
y0=$(yasmin_bytes) n0=$(netfront_bytes)
check iperf3-preloaded-runs timeout 120 env LD_PRELOAD=$PRELOAD YASMIN_PRELOAD_LOG=1 iperf3 -c "$PEER_IP" -p 5201 -t 3 -J > /tmp/iperf1.json 2>/tmp/iperf1.err
y1=$(yasmin_bytes) n1=$(netfront_bytes)
sed 's/^/# iperf3 -c (preloaded): /' /tmp/iperf1.err
rate1=$(grep -o '"bits_per_second":[^,]*' /tmp/iperf1.json | tail -1 | cut -d: -f2)
echo "YASMIN-INFO preload: iperf3 over YASMIN: $rate1 bit/s; YASMIN bytes +$((y1 - y0)), netfront bytes +$((n1 - n0))"
check iperf3-preloaded-went-over-vsock grep -q 'vsock CID' /tmp/iperf1.err
check yasmin-counters-moved test $((y1 - y0)) -ge 1000000
check netfront-counters-did-not-move test $((n1 - n0)) -le 100000

# 2. The same binary without the library: TCP over netfront.
check barrier-iperf-plain-serving barrier iperf-plain-serving 120
y0=$(yasmin_bytes) n0=$(netfront_bytes)
check iperf3-plain-runs timeout 120 iperf3 -c "$PEER_IP" -p 5202 -t 3 -J > /tmp/iperf2.json 2>/tmp/iperf2.err
y1=$(yasmin_bytes) n1=$(netfront_bytes)
rate2=$(grep -o '"bits_per_second":[^,]*' /tmp/iperf2.json | tail -1 | cut -d: -f2)
echo "YASMIN-INFO preload: iperf3 over TCP/netfront: $rate2 bit/s; YASMIN bytes +$((y1 - y0)), netfront bytes +$((n1 - n0))"
check plain-iperf3-left-yasmin-alone test $((y1 - y0)) = 0
check plain-iperf3-went-over-netfront test $((n1 - n0)) -ge 1000000

# 3. A destination not in the map (dom0's bridge address): still TCP, with the library.
check dom0-service-up xs_wait dom0-serving 120
check preloaded-reaches-unmapped-tcp sh -c "echo ping | LD_PRELOAD=$PRELOAD YASMIN_PRELOAD_LOG=1 timeout 60 socat -t 30 - TCP:$HOST_IP:5400 > /tmp/unmapped.out 2>/tmp/unmapped.err && grep -q '^dom0 says ping' /tmp/unmapped.out"
sed 's/^/# unmapped: /' /tmp/unmapped.err /tmp/unmapped.out
check unmapped-stayed-tcp grep -q 'tcp (not co-located)' /tmp/unmapped.err

# 4. One preloaded server, two clients at once: one over YASMIN, one over TCP.
check barrier-servers-up barrier servers-up 120
y0=$(yasmin_bytes)
( head -c 200000 /dev/urandom > /tmp/echo.in
  LD_PRELOAD=$PRELOAD YASMIN_PRELOAD_LOG=1 timeout 100 socat -t 60 - TCP:$PEER_IP:5300 < /tmp/echo.in > /tmp/echo-y.out 2>/tmp/echo-y.err; echo $? > /tmp/echo-y.rc ) &
( sleep 0.2; timeout 100 socat -t 60 - TCP:$PEER_IP:5300 < /tmp/echo.in > /tmp/echo-t.out 2>/tmp/echo-t.err; echo $? > /tmp/echo-t.rc ) &
wait
sed 's/^/# echo yasmin client: /' /tmp/echo-y.err
check echo-over-yasmin-intact sh -c "[ \"\$(cat /tmp/echo-y.rc)\" = 0 ] && cmp -s /tmp/echo.in /tmp/echo-y.out"
check echo-over-tcp-intact sh -c "[ \"\$(cat /tmp/echo-t.rc)\" = 0 ] && cmp -s /tmp/echo.in /tmp/echo-t.out"
check echo-yasmin-client-used-vsock grep -q 'vsock CID' /tmp/echo-y.err
check echo-bytes-over-yasmin test $(( $(yasmin_bytes) - y0 )) -ge 400000

# 5. curl: non-blocking connect + poll through the library, against the preloaded HTTP server.
check curl-preloaded sh -c "LD_PRELOAD=$PRELOAD YASMIN_PRELOAD_LOG=1 timeout 30 curl -sS --max-time 20 http://$PEER_IP:8080/ > /tmp/curl.out 2>/tmp/curl.err && grep -q 'hello over yasmin' /tmp/curl.out"
sed 's/^/# curl: /' /tmp/curl.err /tmp/curl.out
check curl-went-over-vsock grep -q 'vsock CID' /tmp/curl.err
check barrier-clients-done barrier clients-done 120
xs_signal clients-done
sleep 1
check module-unloaded retry 20 rmmod yasmin
