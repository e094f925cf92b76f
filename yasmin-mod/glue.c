// SPDX-License-Identifier: GPL-2.0
/* Thin C glue for the YASMIN module; see glue.h for why each piece is in C. */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include "glue.h"

unsigned int yasmin_param_ring_pages = 128;
module_param_named(ring_pages, yasmin_param_ring_pages, uint, 0444);
MODULE_PARM_DESC(ring_pages,
		 "Default pages per direction of a socket's data ring (power of two, 1..max_ring_pages; default 128 = 512 KiB)");

unsigned int yasmin_param_max_ring_pages = 512;
module_param_named(max_ring_pages, yasmin_param_max_ring_pages, uint, 0444);
MODULE_PARM_DESC(max_ring_pages,
		 "Upper bound for SO_VM_SOCKETS_BUFFER_SIZE-chosen rings, in pages (power of two, <= 512 = 2 MiB)");

bool yasmin_xen_domain(void)
{
	return xen_domain();
}

bool yasmin_xen_pv_domain(void)
{
	return xen_pv_domain();
}

bool yasmin_xen_initial_domain(void)
{
	return xen_initial_domain();
}
