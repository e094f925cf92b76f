# Scenario stream-integrity-full, guest 1 (not in `make test`, for its time): the client at
# full size, 512 MiB each way, 64 connections, 1,000 cycles (/yasmin/lib/stream_integrity.sh).
. /yasmin/lib/case.sh
. /yasmin/lib/stream_integrity.sh
si_client full
