/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Thin C glue for the YASMIN module: the kernel headers bindgen reads, module
 * parameters (the 6.12 Rust `module!` macro has no parameter support) and
 * wrappers for static inlines and macros that Rust cannot call directly.
 * No protocol logic lives here.
 */
#ifndef YASMIN_GLUE_H
#define YASMIN_GLUE_H

#include <linux/types.h>
#include <linux/slab.h>
#include <xen/xen.h>
#include <xen/xenbus.h>
#include <xen/grant_table.h>
#include <xen/events.h>
#include <net/af_vsock.h>

/* Module parameters (read-only after load; see yasmin_main.rs for bounds). */
extern unsigned int yasmin_param_ring_pages;
extern unsigned int yasmin_param_max_ring_pages;

/* xen_domain(), xen_pv_domain(), xen_initial_domain() are macros/static inlines. */
bool yasmin_xen_domain(void);
bool yasmin_xen_pv_domain(void);
bool yasmin_xen_initial_domain(void);

#endif
