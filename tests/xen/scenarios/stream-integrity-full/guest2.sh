# Scenario stream-integrity-full, guest 2: the server (/yasmin/lib/stream_integrity.sh).
. /yasmin/lib/case.sh
. /yasmin/lib/stream_integrity.sh
si_server
