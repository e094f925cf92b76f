# Shared by both guests of the preload scenario.
PRELOAD=/yasmin/lib/libyasmin_preload.so
# with_preload CMD...: runs CMD (an unmodified Debian program) with the library preloaded,
# logging each decision to stderr.
with_preload() { LD_PRELOAD=$PRELOAD YASMIN_PRELOAD_LOG=1 "$@"; }
# Bytes through YASMIN (both directions) and through netfront (eth0, both directions).
yasmin_bytes() { echo $(( $(stat bytes_sent) + $(stat bytes_received) )); }
netfront_bytes() { echo $(( $(cat /sys/class/net/eth0/statistics/tx_bytes) + $(cat /sys/class/net/eth0/statistics/rx_bytes) )); }
