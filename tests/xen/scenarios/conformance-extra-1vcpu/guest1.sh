# Scenario conformance-extra-1vcpu, guest 1 (1 vCPU): the cases, over loopback and over YASMIN.
. /yasmin/lib/case.sh
. /yasmin/lib/conformance.sh
conformance_client
