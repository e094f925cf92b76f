# Shared by both guests of the preload-fallback scenario.
PRELOAD=/yasmin/lib/libyasmin_preload.so
# The stream checker built dynamically: an unmodified TCP program the library reaches.
DYN=/yasmin/lib/yasmin-stream-check-dyn
# Bytes through YASMIN (both directions) and through netfront (eth0, both directions).
yasmin_bytes() { echo $(( $(stat bytes_sent) + $(stat bytes_received) )); }
netfront_bytes() { echo $(( $(cat /sys/class/net/eth0/statistics/tx_bytes) + $(cat /sys/class/net/eth0/statistics/rx_bytes) )); }
# value KEY FILE: the KEY=value line of a cycles summary (0 if absent).
value() { v=$(sed -n "s/^$1=//p" "$2" | tail -1); echo "${v:-0}"; }
