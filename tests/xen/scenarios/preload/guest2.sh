# Scenario preload, guest 2: the servers, unmodified Debian programs. iperf3 with and
# without the preload library, and a preloaded socat echo/HTTP server that serves a
# YASMIN client and a plain TCP client at the same time.
. /yasmin/lib/case.sh
. /yasmin/scenarios/preload/lib.sh
check module-loaded insmod /yasmin/yasmin.ko
check barrier-loaded barrier loaded 120

# 1. iperf3 server under the preload (one test, then it exits).
with_preload iperf3 -s -1 -p 5201 > /tmp/iperf-s1.log 2>&1 &
s1=$!
sleep 2
check barrier-iperf-preload-serving barrier iperf-preload-serving 120
wait $s1
check iperf3-server-preloaded-ok test $? = 0
sed 's/^/# iperf3 -s (preloaded): /' /tmp/iperf-s1.log | grep -v '^\S* *$' | tail -8
check accepted-over-vsock grep -q 'accept vsock' /tmp/iperf-s1.log

# 2. The same iperf3 without the library: plain TCP.
iperf3 -s -1 -p 5202 > /tmp/iperf-s2.log 2>&1 &
s2=$!
sleep 2
check barrier-iperf-plain-serving barrier iperf-plain-serving 120
wait $s2
check iperf3-server-plain-ok test $? = 0

# 3. One preloaded server, a YASMIN client and a TCP client at once: socat echo server.
with_preload socat TCP-LISTEN:5300,fork,reuseaddr EXEC:cat > /tmp/echo.log 2>&1 &
echo_pid=$!
# 4. A tiny HTTP server (preloaded socat) for curl's non-blocking connect + epoll.
printf 'HTTP/1.0 200 OK\r\nContent-Length: 17\r\n\r\nhello over yasmin' > /tmp/http.resp
with_preload socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:'read l; cat /tmp/http.resp' > /tmp/http.log 2>&1 &
http_pid=$!
sleep 2
check barrier-servers-up barrier servers-up 120
check barrier-clients-done barrier clients-done 300
kill $echo_pid $http_pid 2>/dev/null
sed 's/^/# echo server: /' /tmp/echo.log | head -20
sed 's/^/# http server: /' /tmp/http.log | head -10
check echo-server-accepted-vsock grep -q 'accept vsock' /tmp/echo.log
check echo-server-listened-dual grep -q 'listen .*5300 -> tcp + vsock' /tmp/echo.log
sleep 1
check module-unloaded retry 20 rmmod yasmin
