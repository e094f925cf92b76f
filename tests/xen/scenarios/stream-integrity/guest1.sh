# Scenario stream-integrity, guest 1: the client, at the default sizes (64 MiB each way,
# 32 connections, 150 cycles; /yasmin/lib/stream_integrity.sh).
. /yasmin/lib/case.sh
. /yasmin/lib/stream_integrity.sh
si_client
