# Scenarios conformance-extra (2-vCPU guests) and conformance-extra-1vcpu: the socket
# semantics an application sees (conformance/: bad buffers, SIOCOUTQ/SIOCINQ, SO_RCVLOWAT
# and MSG_WAITALL around both ring sizes, data then close, connect retries, SO_LINGER,
# accept queue, SOCK_SEQPACKET records), every case run over vsock loopback in guest 1
# (the reference, virtio_transport_common) and over YASMIN to guest 2.
CONF_PORT=9100

# conformance_client: guest 1.
conformance_client() {
    check module-loaded insmod /yasmin/yasmin.ko
    baseline_zero
    # The reference's server, in this guest (reached at CID 1).
    yasmin-conformance serve --port $CONF_PORT > /tmp/conf-loopback-server.log 2>&1 &
    local_server=$!
    check barrier-serving barrier serving 120
    timeout 900 yasmin-conformance run --target-cid "$PEER_CID" --port $CONF_PORT > /tmp/conf.log 2>&1
    rc=$?
    cat /tmp/conf.log
    check conformance-run-exit test "$rc" = 0
    kill $local_server 2>/dev/null
    sed 's/^/# loopback server: /' /tmp/conf-loopback-server.log | head -20
    check barrier-done barrier done 120
    # Every YASMIN socket of the run is gone, and so are its pages and channels.
    check no-socket-left retry 15 stat_is sockets = 0
    check no-connection-left retry 15 stat_is connections_live = 0
    baseline_check 15
    check module-unloaded retry 10 rmmod yasmin
}

# conformance_server: guest 2.
conformance_server() {
    check module-loaded insmod /yasmin/yasmin.ko
    baseline_zero
    yasmin-conformance serve --port $CONF_PORT > /tmp/conf-server.log 2>&1 &
    server=$!
    sleep 1
    check barrier-serving barrier serving 120
    check barrier-done barrier done 1000
    kill $server 2>/dev/null
    sed 's/^/# server: /' /tmp/conf-server.log | head -20
    check no-socket-left retry 15 stat_is sockets = 0
    check no-connection-left retry 15 stat_is connections_live = 0
    baseline_check 15
    check module-unloaded retry 10 rmmod yasmin
}
