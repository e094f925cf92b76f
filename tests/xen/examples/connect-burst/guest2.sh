# connect-burst, guest 2: the servers (vsock 128-page and 1-page rings, TCP), profiled;
# for the last configuration the module is reloaded with max_setups=1.
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
serve() {
  yasmin-stream-check serve --listen vsock:6400 >> /tmp/sv.log 2>&1 &
  pids=$!
  yasmin-stream-check serve --listen vsock:6402 --buffer-size 4096 >> /tmp/sv1.log 2>&1 &
  pids="$pids $!"
}
serve
yasmin-stream-check serve --listen tcp:0.0.0.0:6401 > /tmp/st.log 2>&1 &
echo 1 > /sys/kernel/debug/yasmin/profile
check barrier-serving barrier serving 120
for cfg in ring128 ring1 serial128; do
  if [ "$cfg" = serial128 ]; then
    kill $pids; sleep 1
    reload() { retry 30 rmmod yasmin && insmod /yasmin/yasmin.ko max_setups=1; }
    check reloaded-one-setup-at-a-time reload
    serve
    echo 1 > /sys/kernel/debug/yasmin/profile
    sleep 1
    check barrier-serial-serving barrier serial-serving 300
  fi
  check barrier-$cfg-done barrier $cfg-done 900
  sed "s/^/# profile $cfg acceptor: /" /sys/kernel/debug/yasmin/profile
  echo 1 > /sys/kernel/debug/yasmin/profile
done
sort /tmp/sv.log /tmp/sv1.log /tmp/st.log | uniq -c | sed 's/^/# server: /' | head
