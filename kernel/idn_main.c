// SPDX-License-Identifier: GPL-2.0
/*
 * idn_main.c - idn.ko entry: module parameters (defaults of the hold
 * limits), per-netns state with /proc/net/idn, and the init/exit order
 * that makes unloading safe at any time.
 */
#include <linux/capability.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#include "idn_kmod.h"

IDN_ASSERT_ABI();

unsigned int idn_max_pkts = 64;
module_param_named(max_pkts, idn_max_pkts, uint, 0444);
MODULE_PARM_DESC(max_pkts, "packets held per capability queue (default 64)");

unsigned int idn_max_bytes = 256 * 1024;
module_param_named(max_bytes, idn_max_bytes, uint, 0444);
MODULE_PARM_DESC(max_bytes, "bytes held per capability queue (default 262144)");

unsigned int idn_timeout_ms = 2000;
module_param_named(timeout_ms, idn_timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms, "hold time before a packet is rejected (default 2000)");

unsigned int idn_event_ms = 1000;
module_param_named(event_ms, idn_event_ms, uint, 0444);
MODULE_PARM_DESC(event_ms, "minimum interval between demand-miss events of a queue (default 1000)");

unsigned int idn_max_queues = 256;
module_param_named(max_queues, idn_max_queues, uint, 0444);
MODULE_PARM_DESC(max_queues, "capability queues per network namespace (default 256)");

atomic_t idn_outstanding = ATOMIC_INIT(0);
unsigned int idn_net_id __read_mostly;

/*
 * /proc/net/idn lists the held queues like IDN_CMD_QUEUE_GET does, so it
 * asks the same right: CAP_NET_ADMIN in the netns's user namespace, of
 * whoever opened the file (as netlink checks the socket's opener).
 */
static int idn_proc_show(struct seq_file *m, void *v)
{
	struct net *net = seq_file_single_net(m);

	if (!file_ns_capable(m->file, net->user_ns, CAP_NET_ADMIN))
		return -EPERM;
	idn_hold_show(m, idn_pernet(net));
	return 0;
}

static int __net_init idn_net_init(struct net *net)
{
	struct idn_net *in = idn_pernet(net);
	int err;

	in->net = net;
	err = idn_hold_net_init(in);
	if (err)
		return err;
	if (!proc_create_net_single("idn", 0444, net->proc_net, idn_proc_show, NULL)) {
		idn_hold_net_exit(in);
		return -ENOMEM;
	}
	return 0;
}

static void __net_exit idn_net_exit(struct net *net)
{
	remove_proc_entry("idn", net->proc_net);
	idn_hold_net_exit(idn_pernet(net));
}

static struct pernet_operations idn_net_ops = {
	.init = idn_net_init,
	.exit = idn_net_exit,
	.id = &idn_net_id,
	.size = sizeof(struct idn_net),
};

static bool idn_params_ok(void)
{
	return idn_max_pkts >= 1 && idn_max_bytes >= 1500 && idn_timeout_ms >= 10 &&
	       idn_max_queues >= 1;
}

static int __init idn_init(void)
{
	int err;

	if (!idn_params_ok()) {
		pr_err("idn: max_pkts >= 1, max_bytes >= 1500, timeout_ms >= 10, max_queues >= 1\n");
		return -EINVAL;
	}
	err = register_pernet_subsys(&idn_net_ops);
	if (err)
		return err;
	err = idn_genl_register();
	if (err)
		goto out_pernet;
	pr_info("idn: activation hold loaded (family \"%s\" v%d)\n", IDN_FAMILY_NAME,
		IDN_FAMILY_VERSION);
	return 0;
out_pernet:
	unregister_pernet_subsys(&idn_net_ops);
	return err;
}

static void __exit idn_exit(void)
{
	idn_genl_unregister();
	/* rejects what is held, then drops the per-netns device notifiers */
	unregister_pernet_subsys(&idn_net_ops);
	if (WARN_ON(atomic_read(&idn_outstanding)))
		pr_err("idn: %d held packets leaked\n", atomic_read(&idn_outstanding));
	pr_info("idn: unloaded\n");
}

module_init(idn_init);
module_exit(idn_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("IDN activation hold and generic netlink control");
MODULE_AUTHOR("IDN project");
