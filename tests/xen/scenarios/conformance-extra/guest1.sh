# Scenario conformance-extra, guest 1 (2 vCPUs): the cases, over loopback and over YASMIN.
. /yasmin/lib/case.sh
. /yasmin/lib/conformance.sh
conformance_client
