# Scenarios conformance-extra (2-vCPU guests) and conformance-extra-1vcpu: the socket
# semantics an application sees (conformance/: bad buffers, SIOCOUTQ/SIOCINQ, SO_RCVLOWAT
# and MSG_WAITALL around both ring sizes, data then close, connect retries, SO_LINGER,
# accept queue, SOCK_SEQPACKET records), every case run over vsock loopback in guest 1
# (the reference, virtio_transport_common) and over YASMIN to guest 2.
CONF_PORT=9100

# conformance_setup: YASMIN loaded, the pair's channel up, and the baseline taken with
# it (its control page, event channel and interrupt stay while both modules are loaded).
conformance_setup() {
    check module-loaded insmod /yasmin/yasmin.ko
    check barrier-loaded barrier loaded 120
    check pair-up pair_up "$PEER_DOMID" 120
    baseline_take
    echo "# baseline: grants $base_grants, mapped $base_mapped, event channels $base_evtchns, interrupts $base_irqs"
}

# conformance_teardown: every socket of the run gone, and with it its pages, channels and
# interrupts; then (once both guests checked) the module goes.
conformance_teardown() {
    check barrier-done barrier done 1000
    check no-socket-left retry 15 stat_is sockets = 0
    check no-connection-left retry 15 stat_is connections_live = 0
    baseline_check 15
    sed 's/^/# stats: /' /sys/kernel/debug/yasmin/stats | grep -E 'grant|mapped|event|sockets|connections|resets'
    check barrier-checked barrier checked 120
    check module-unloaded retry 10 rmmod yasmin
}

# conformance_client: guest 1.
conformance_client() {
    conformance_setup
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
    conformance_teardown
}

# conformance_server: guest 2.
conformance_server() {
    conformance_setup
    yasmin-conformance serve --port $CONF_PORT > /tmp/conf-server.log 2>&1 &
    server=$!
    sleep 1
    check barrier-serving barrier serving 120
    check barrier-cases-done barrier done 1000
    kill $server 2>/dev/null
    sed 's/^/# server: /' /tmp/conf-server.log | head -20
    conformance_teardown
}
