/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Thin C glue for the YASMIN module: the kernel headers bindgen reads, module
 * parameters (the 6.12 Rust `module!` macro has no parameter support), wrappers for
 * static inlines and macros that Rust cannot call directly, and the few C objects the
 * kernel wants statically defined (the control work item, debugfs file operations).
 * No protocol logic lives here: every callback below calls straight into Rust.
 */
#ifndef YASMIN_GLUE_H
#define YASMIN_GLUE_H

#include <linux/types.h>
#include <linux/slab.h>
#include <linux/interrupt.h>
#include <xen/xen.h>
#include <xen/xenbus.h>
#include <xen/grant_table.h>
#include <xen/events.h>
#include <xen/interface/event_channel.h>
#include <net/af_vsock.h>
#include <net/sock.h>
#include <net/tcp_states.h>
#include <linux/delay.h>

/* Module parameters (read-only after load; see yasmin_main.rs for bounds). */
extern unsigned int yasmin_param_ring_pages;
extern unsigned int yasmin_param_max_ring_pages;
extern unsigned int yasmin_param_max_conns_per_peer;
extern unsigned int yasmin_param_max_conns;
extern unsigned int yasmin_param_max_granted_pages;
extern unsigned int yasmin_param_max_mapped_pages;
extern unsigned int yasmin_param_linger_ms;
extern unsigned int yasmin_param_bad_msg_budget;
extern unsigned int yasmin_param_max_setups;
/* Sizes the default limits derive from (totalram_pages() is a static inline). */
unsigned long yasmin_total_ram_pages(void);
unsigned long yasmin_grant_entries(void);

/* xen_domain(), xen_pv_domain(), xen_initial_domain() are macros/static inlines. */
bool yasmin_xen_domain(void);
bool yasmin_xen_pv_domain(void);
bool yasmin_xen_pvh_domain(void);
bool yasmin_xen_initial_domain(void);

/* Pages: get_zeroed_page() and virt_to_page()/page_address() are macros. */
void *yasmin_alloc_zeroed_page(void);
void yasmin_free_page(void *addr);
void *yasmin_page_address(struct page *page);

/* Grants: virt_to_gfn() and gnttab_set_{map,unmap}_op() are static inlines. */
int yasmin_grant_page(domid_t domid, void *addr, bool readonly);
void yasmin_end_foreign_access(grant_ref_t ref, void *addr);
/* Ends a grant the peer no longer maps (and frees the ref); false if it still maps it. */
bool yasmin_try_end_foreign_access(grant_ref_t ref);
void yasmin_set_map_op(struct gnttab_map_grant_ref *op, struct page *page,
		       grant_ref_t ref, domid_t domid, bool readonly);
void yasmin_set_unmap_op(struct gnttab_unmap_grant_ref *op, struct page *page,
			 grant_handle_t handle, bool readonly);

/* Event channels: HYPERVISOR_event_channel_op() is a static inline. */
int yasmin_evtchn_alloc_unbound(domid_t remote, evtchn_port_t *port);
int yasmin_evtchn_bind_interdomain(domid_t remote, evtchn_port_t remote_port,
				   evtchn_port_t *local_port);
void yasmin_evtchn_close(evtchn_port_t port);

/* Sockets: lock_sock(), sock_hold()/sock_put() and the accept-queue helpers are inlines. */
void yasmin_lock_sock(struct sock *sk);
void yasmin_sock_hold(struct sock *sk);
void yasmin_sock_put(struct sock *sk);
bool yasmin_sk_acceptq_is_full(struct sock *sk);
void yasmin_sk_acceptq_added(struct sock *sk);
void yasmin_sk_wake(struct sock *sk);
unsigned int yasmin_sock_linger_ms(struct sock *sk);
bool yasmin_sock_is_seqpacket(struct sock *sk);
/* msg_data_left() is an inline: the room left in a receive (or data left in a send). */
size_t yasmin_msg_data_left(struct msghdr *msg);

/*
 * The control-plane work item (DECLARE_DELAYED_WORK is a macro): every run calls
 * yasmin_control_work() (Rust, transport/mod.rs).
 */
void yasmin_control_work(void);
void yasmin_ctl_kick(void);
void yasmin_ctl_kick_after(unsigned int ms);
void yasmin_ctl_cancel(void);
void yasmin_ctl_disable(void);

/*
 * Incoming connections are set up off the control work item, several at once, on a
 * workqueue of their own (the job is Rust's, run by yasmin_setup_run() in
 * transport/mod.rs): INIT_WORK and container_of are macros.
 */
void yasmin_setup_run(void *job);
int yasmin_setup_start(unsigned int max_active);
bool yasmin_setup_queue(void *job);
void yasmin_setup_flush(void);
void yasmin_setup_stop(void);

/*
 * Save/restore and migration: a platform device whose dev_pm_ops (C structures) call
 * Rust (lifecycle.rs). Xen's suspend path runs them: freeze after the processes are
 * frozen and before XenStore is suspended; thaw (cancelled suspend) or restore (a new
 * domain, after save/restore or migration) once XenStore is back.
 */
int yasmin_pm_freeze(void);
int yasmin_pm_resume(bool restored);
int yasmin_pm_register(void);
void yasmin_pm_unregister(void);

/*
 * debugfs (<debugfs>/yasmin/): file operations are C structures; the content comes
 * from Rust (debugfs.rs) and writes go to Rust.
 */
long yasmin_debugfs_pairs(char *buf, size_t len);
long yasmin_debugfs_stats(char *buf, size_t len);
long yasmin_debugfs_peers(char *buf, size_t len);
int yasmin_debugfs_connect(unsigned int domid);
void yasmin_debugfs_init(void);
void yasmin_debugfs_exit(void);

#ifdef YASMIN_TEST
/* Test build only (make module-test): the ring-corruption hook and the profile. */
int yasmin_debugfs_scribble(unsigned int port);
int yasmin_debugfs_adversary(const char *buf, size_t len);
long yasmin_debugfs_profile(char *buf, size_t len);
int yasmin_debugfs_profile_set(unsigned int on);
/* get_cycles() (the TSC) is a static inline: the data-path profile's clock. */
u64 yasmin_clock_cycles(void);
#endif

#endif
