#!/bin/sh
# Benchmark, dom0 part: each guest's vCPU on its own physical CPU (the test bed has two),
# so that a run does not depend on where Xen's scheduler happens to put them: two guests
# sharing one CPU serialise YASMIN's two copies and halve its throughput (boots differed
# by 2x before this). dom0 keeps both CPUs (netback runs there for the TCP runs).
. /yasmin/lib/case.sh
check pin-guest1-cpu1 xl vcpu-pin "$GUEST1_DOMID" 0 1
check pin-guest2-cpu0 xl vcpu-pin "$GUEST2_DOMID" 0 0
xl vcpu-list | sed 's/^/# /'
