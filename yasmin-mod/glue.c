// SPDX-License-Identifier: GPL-2.0
/* Thin C glue for the YASMIN module; see glue.h for why each piece is in C. */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/workqueue.h>
#include <linux/slab.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/timex.h>
#include <linux/uaccess.h>
#include <linux/platform_device.h>
#include <asm/xen/hypercall.h>
#include <asm/xen/page.h>
#include "glue.h"

/* A read-only (after load) uint module parameter NAME, in C as yasmin_param_NAME. */
#define YASMIN_PARAM(name, def, desc)                                   \
	unsigned int yasmin_param_##name = def;                         \
	module_param_named(name, yasmin_param_##name, uint, 0444);      \
	MODULE_PARM_DESC(name, desc)

YASMIN_PARAM(ring_pages, 128,
	     "Default pages per direction of a socket's data ring (power of two, 1..max_ring_pages; default 128 = 512 KiB)");
YASMIN_PARAM(max_ring_pages, 512,
	     "Upper bound for SO_VM_SOCKETS_BUFFER_SIZE-chosen rings, in pages (power of two, <= 512 = 2 MiB)");

/* Limits (see yasmin_main.rs and limits.rs; 0 = derived from the guest at load). */
YASMIN_PARAM(max_conns_per_peer, 128,
	     "Most live connections with one peer domain, pages it withholds counted as connections (default 128)");
YASMIN_PARAM(max_conns, 1024, "Most live connections in all (default 1024)");
YASMIN_PARAM(max_granted_pages, 0,
	     "Most pages granted to peers at once (default 0: half the grant table, at most a quarter of RAM)");
YASMIN_PARAM(max_mapped_pages, 0, "Most peer pages mapped at once (default 0: a quarter of RAM)");
YASMIN_PARAM(linger_ms, 30000,
	     "How long a closed socket's ring stays readable for a peer that has not closed its side (default 30000)");
YASMIN_PARAM(bad_msg_budget, 32,
	     "Invalid control messages a peer may send per channel per minute before the channel is reset (default 32)");
YASMIN_PARAM(max_setups, 4,
	     "Incoming connections set up at once (1..64; default 4; 1 = one after the other)");

unsigned long yasmin_total_ram_pages(void)
{
	return totalram_pages();
}

unsigned long yasmin_grant_entries(void)
{
	return (unsigned long)gnttab_max_grant_frames() * (PAGE_SIZE / sizeof(struct grant_entry_v1));
}

bool yasmin_xen_domain(void)
{
	return xen_domain();
}

bool yasmin_xen_pv_domain(void)
{
	return xen_pv_domain();
}

bool yasmin_xen_pvh_domain(void)
{
	return xen_pvh_domain();
}

bool yasmin_xen_initial_domain(void)
{
	return xen_initial_domain();
}

void *yasmin_alloc_zeroed_page(void)
{
	return (void *)get_zeroed_page(GFP_KERNEL);
}

void yasmin_free_page(void *addr)
{
	free_page((unsigned long)addr);
}

void *yasmin_page_address(struct page *page)
{
	return page_address(page);
}

int yasmin_grant_page(domid_t domid, void *addr, bool readonly)
{
	return gnttab_grant_foreign_access(domid, virt_to_gfn(addr), readonly);
}

void yasmin_end_foreign_access(grant_ref_t ref, void *addr)
{
	gnttab_end_foreign_access(ref, virt_to_page(addr));
}

bool yasmin_try_end_foreign_access(grant_ref_t ref)
{
	return gnttab_try_end_foreign_access(ref);
}

void yasmin_set_map_op(struct gnttab_map_grant_ref *op, struct page *page,
		       grant_ref_t ref, domid_t domid, bool readonly)
{
	gnttab_set_map_op(op, (unsigned long)page_address(page),
			  GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0), ref, domid);
}

void yasmin_set_unmap_op(struct gnttab_unmap_grant_ref *op, struct page *page,
			 grant_handle_t handle, bool readonly)
{
	gnttab_set_unmap_op(op, (unsigned long)page_address(page),
			    GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0), handle);
}

int yasmin_evtchn_alloc_unbound(domid_t remote, evtchn_port_t *port)
{
	struct evtchn_alloc_unbound op = { .dom = DOMID_SELF, .remote_dom = remote };
	int rc = HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &op);

	if (!rc)
		*port = op.port;
	return rc;
}

int yasmin_evtchn_bind_interdomain(domid_t remote, evtchn_port_t remote_port,
				   evtchn_port_t *local_port)
{
	struct evtchn_bind_interdomain op = {
		.remote_dom = remote, .remote_port = remote_port
	};
	int rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_interdomain, &op);

	if (!rc)
		*local_port = op.local_port;
	return rc;
}

void yasmin_evtchn_close(evtchn_port_t port)
{
	struct evtchn_close op = { .port = port };

	int rc = HYPERVISOR_event_channel_op(EVTCHNOP_close, &op);

	if (rc)
		pr_warn("yasmin: closing event channel %u: %d\n", port, rc);
}

void yasmin_lock_sock(struct sock *sk)
{
	lock_sock(sk);
}

void yasmin_sock_hold(struct sock *sk)
{
	sock_hold(sk);
}

void yasmin_sock_put(struct sock *sk)
{
	sock_put(sk);
}

bool yasmin_sk_acceptq_is_full(struct sock *sk)
{
	return sk_acceptq_is_full(sk);
}

void yasmin_sk_acceptq_added(struct sock *sk)
{
	sk_acceptq_added(sk);
}

/* Wake readers, writers and pollers (callable from hard IRQ context). */
void yasmin_sk_wake(struct sock *sk)
{
	sk->sk_data_ready(sk);
	sk->sk_write_space(sk);
}

/* SO_LINGER's time for a close() by a process (sock_flag is an inline; 0: no wait). */
unsigned int yasmin_sock_linger_ms(struct sock *sk)
{
	if (!sock_flag(sk, SOCK_LINGER) || !sk->sk_socket || (current->flags & PF_EXITING))
		return 0;
	return jiffies_to_msecs(sk->sk_lingertime);
}

static void yasmin_ctl_workfn(struct work_struct *work)
{
	yasmin_control_work();
}

static DECLARE_DELAYED_WORK(yasmin_ctl_dwork, yasmin_ctl_workfn);

/* Run the control work now (a pending later run is pulled forward). */
void yasmin_ctl_kick(void)
{
	mod_delayed_work(system_wq, &yasmin_ctl_dwork, 0);
}

/* Run it in `ms` at the latest: an earlier pending run is kept. */
void yasmin_ctl_kick_after(unsigned int ms)
{
	queue_delayed_work(system_wq, &yasmin_ctl_dwork, msecs_to_jiffies(ms));
}

void yasmin_ctl_cancel(void)
{
	cancel_delayed_work_sync(&yasmin_ctl_dwork);
}

/* Unload: cancel, and refuse every later queueing (a late kick must not outlive us). */
void yasmin_ctl_disable(void)
{
	disable_delayed_work_sync(&yasmin_ctl_dwork);
}

static struct workqueue_struct *yasmin_setup_wq;

struct yasmin_setup_item {
	struct work_struct work;
	void *job;
};

static void yasmin_setup_workfn(struct work_struct *work)
{
	struct yasmin_setup_item *it = container_of(work, struct yasmin_setup_item, work);
	void *job = it->job;

	kfree(it);
	yasmin_setup_run(job);
}

/* At most `max_active` set-ups run at once (max_setups, checked at load). */
int yasmin_setup_start(unsigned int max_active)
{
	yasmin_setup_wq = alloc_workqueue("yasmin_setup", WQ_UNBOUND, max_active);
	return yasmin_setup_wq ? 0 : -ENOMEM;
}

/* Queues `job` for yasmin_setup_run(); false (nothing queued) without memory. */
bool yasmin_setup_queue(void *job)
{
	struct yasmin_setup_item *it = kmalloc(sizeof(*it), GFP_KERNEL);

	if (!it)
		return false;
	INIT_WORK(&it->work, yasmin_setup_workfn);
	it->job = job;
	queue_work(yasmin_setup_wq, &it->work);
	return true;
}

/* Waits for every set-up queued so far (the caller has stopped the queueing). */
void yasmin_setup_flush(void)
{
	flush_workqueue(yasmin_setup_wq);
}

/* Waits for every set-up, then frees the workqueue. */
void yasmin_setup_stop(void)
{
	destroy_workqueue(yasmin_setup_wq);
	yasmin_setup_wq = NULL;
}

static int yasmin_pm_freeze_cb(struct device *dev)
{
	return yasmin_pm_freeze();
}

static int yasmin_pm_thaw_cb(struct device *dev)
{
	return yasmin_pm_resume(false);
}

static int yasmin_pm_restore_cb(struct device *dev)
{
	return yasmin_pm_resume(true);
}

static const struct dev_pm_ops yasmin_pm_ops = {
	.freeze = yasmin_pm_freeze_cb,
	.thaw = yasmin_pm_thaw_cb,
	.restore = yasmin_pm_restore_cb,
};

static struct platform_driver yasmin_pm_driver = {
	.driver = {
		.name = "yasmin",
		.pm = &yasmin_pm_ops,
	},
};

static struct platform_device *yasmin_pm_dev;

/* Registered last at load: the PM core suspends later devices first, resumes them last. */
int yasmin_pm_register(void)
{
	int err = platform_driver_register(&yasmin_pm_driver);

	if (err)
		return err;
	yasmin_pm_dev = platform_device_register_simple("yasmin", PLATFORM_DEVID_NONE, NULL, 0);
	if (IS_ERR(yasmin_pm_dev)) {
		platform_driver_unregister(&yasmin_pm_driver);
		return PTR_ERR(yasmin_pm_dev);
	}
	return 0;
}

/* Waits for a running PM callback (the device lock). */
void yasmin_pm_unregister(void)
{
	platform_device_unregister(yasmin_pm_dev);
	platform_driver_unregister(&yasmin_pm_driver);
}

static struct dentry *yasmin_dbg_dir;

/* A read-only file whose whole content Rust formats into one page. */
static int show_from_rust(struct seq_file *m, long (*fill)(char *, size_t))
{
	long n;
	char *buf = kmalloc(PAGE_SIZE, GFP_KERNEL);

	if (!buf)
		return -ENOMEM;
	n = fill(buf, PAGE_SIZE);
	if (n > 0)
		seq_write(m, buf, n);
	kfree(buf);
	return n < 0 ? n : 0;
}

static int pairs_show(struct seq_file *m, void *v)
{
	return show_from_rust(m, yasmin_debugfs_pairs);
}
DEFINE_SHOW_ATTRIBUTE(pairs);

static int stats_show(struct seq_file *m, void *v)
{
	return show_from_rust(m, yasmin_debugfs_stats);
}
DEFINE_SHOW_ATTRIBUTE(stats);

static int peers_show(struct seq_file *m, void *v)
{
	return show_from_rust(m, yasmin_debugfs_peers);
}
DEFINE_SHOW_ATTRIBUTE(peers);

/* A write-only file taking one decimal number that Rust acts on. */
static ssize_t uint_to_rust(const char __user *ubuf, size_t len,
			    int (*apply)(unsigned int))
{
	unsigned int v;
	int rc = kstrtouint_from_user(ubuf, len, 10, &v);

	if (rc)
		return rc;
	rc = apply(v);
	return rc ? rc : len;
}

/* NAME_write(): the debugfs write handler that hands one number to FN. */
#define DEFINE_UINT_WRITE(name, fn)                                          \
	static ssize_t name##_write(struct file *file, const char __user *ubuf, \
				    size_t len, loff_t *ppos)                   \
	{                                                                    \
		return uint_to_rust(ubuf, len, fn);                          \
	}

DEFINE_UINT_WRITE(connect, yasmin_debugfs_connect);

static const struct file_operations connect_fops = {
	.owner = THIS_MODULE,
	.write = connect_write,
};

#ifdef YASMIN_TEST
DEFINE_UINT_WRITE(scribble, yasmin_debugfs_scribble);

/* Data-path profile: read the per-stage counters; write 1 (reset, start) or 0 (stop). */
static int profile_show(struct seq_file *m, void *v)
{
	return show_from_rust(m, yasmin_debugfs_profile);
}

static int profile_open(struct inode *inode, struct file *file)
{
	return single_open(file, profile_show, inode->i_private);
}

DEFINE_UINT_WRITE(profile, yasmin_debugfs_profile_set);

static const struct file_operations profile_fops = {
	.owner = THIS_MODULE,
	.open = profile_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
	.write = profile_write,
};

u64 yasmin_clock_cycles(void)
{
	return get_cycles();
}

/* Test hook: one attack command (a short line) for Rust to parse and carry out. */
static ssize_t adversary_write(struct file *file, const char __user *ubuf,
			       size_t len, loff_t *ppos)
{
	char buf[64];
	int rc;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	rc = yasmin_debugfs_adversary(buf, len);
	return rc ? rc : len;
}

static const struct file_operations adversary_fops = {
	.owner = THIS_MODULE,
	.write = adversary_write,
};

/* Test hook: corrupt the ring header of the socket with this local port. */
static const struct file_operations scribble_fops = {
	.owner = THIS_MODULE,
	.write = scribble_write,
};
#endif

void yasmin_debugfs_init(void)
{
	yasmin_dbg_dir = debugfs_create_dir("yasmin", NULL);
	debugfs_create_file("pairs", 0444, yasmin_dbg_dir, NULL, &pairs_fops);
	debugfs_create_file("stats", 0444, yasmin_dbg_dir, NULL, &stats_fops);
	debugfs_create_file("peers", 0444, yasmin_dbg_dir, NULL, &peers_fops);
	debugfs_create_file("connect", 0200, yasmin_dbg_dir, NULL, &connect_fops);
#ifdef YASMIN_TEST
	debugfs_create_file("scribble_tx_port", 0200, yasmin_dbg_dir, NULL, &scribble_fops);
	debugfs_create_file("profile", 0600, yasmin_dbg_dir, NULL, &profile_fops);
	debugfs_create_file("adversary", 0200, yasmin_dbg_dir, NULL, &adversary_fops);
#endif
}

void yasmin_debugfs_exit(void)
{
	debugfs_remove(yasmin_dbg_dir);
	yasmin_dbg_dir = NULL;
}

/* The socket type (sk_type): SOCK_SEQPACKET sockets carry records, SOCK_STREAM bytes. */
bool yasmin_sock_is_seqpacket(struct sock *sk)
{
	return sk->sk_type == SOCK_SEQPACKET;
}

size_t yasmin_msg_data_left(struct msghdr *msg)
{
	return msg_data_left(msg);
}
