# Scenario conformance-extra-1vcpu, guest 2 (1 vCPU): the passive side of every case.
. /yasmin/lib/case.sh
. /yasmin/lib/conformance.sh
conformance_server
