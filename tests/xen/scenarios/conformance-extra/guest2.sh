# Scenario conformance-extra, guest 2 (2 vCPUs): the passive side of every case.
. /yasmin/lib/case.sh
. /yasmin/lib/conformance.sh
conformance_server
