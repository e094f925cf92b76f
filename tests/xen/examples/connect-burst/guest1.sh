# Connection set-up under bursts (issue #17): 16 and 48 connects at the same instant,
# YASMIN (128-page and 1-page rings) and TCP over netfront interleaved, 3 rounds each;
# then 128-page rings again with guest 2's module set to one set-up at a time
# (max_setups=1, as before set-ups ran beside each other); the set-up stages from the
# test module's profile. Not in `make test` (a measurement):
# tests/xen/run custom tests/xen/examples/connect-burst
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
check barrier-serving barrier serving 120
yasmin-stream-check latency --connect vsock:$PEER_CID:6400 --count 2 --max-ms 100000 >/dev/null 2>&1
yasmin-stream-check latency --connect vsock:$PEER_CID:6402 --count 2 --max-ms 100000 >/dev/null 2>&1
echo 1 > /sys/kernel/debug/yasmin/profile
for cfg in ring128 ring1 serial128; do
  [ "$cfg" != serial128 ] || check barrier-serial-serving barrier serial-serving 300
  for n in 16 48; do
    for r in 1 2 3; do
      for t in yasmin tcp; do
        case $t-$cfg in
          yasmin-ring128|yasmin-serial128) a="vsock:$PEER_CID:6400" ;;
          yasmin-ring1) a="vsock:$PEER_CID:6402 --buffer-size 4096" ;;
          *) a="tcp:$PEER_IP:6401" ;;
        esac
        timeout 120 yasmin-stream-check burst --connect $a --conns $n > /tmp/b.log 2>&1
        echo "# burst cfg=$cfg n=$n round=$r $t rc=$? $(tr '\n' ' ' < /tmp/b.log)"
        sleep 2
      done
    done
  done
  sed "s/^/# profile $cfg connector: /" /sys/kernel/debug/yasmin/profile
  echo 1 > /sys/kernel/debug/yasmin/profile
  check barrier-$cfg-done barrier $cfg-done 900
done
sed 's/^/# stats: /' /sys/kernel/debug/yasmin/stats | head -14
