/*
 * The vCPU threads' allow-list (vcpu.c), on top of filter_common.c.
 *
 * A vCPU thread runs KVM_RUN and handles the exits it can handle at once:
 * port I/O and MMIO to the devices (serial, i8042, debug-exit, the
 * virtio-mmio registers). Device I/O itself runs on the event loop.
 */
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vhost.h>

#include "sandbox.h"

static const struct sandbox_rule vcpu[] = {
    SB_IOCTL(KVM_RUN),
    /* Pausing (park() in vcpu.c): tell the guest's clock it was stopped. */
    SB_IOCTL(KVM_KVMCLOCK_CTRL),
    /* A guest crash is reported with its registers. */
    SB_IOCTL(KVM_GET_REGS),
    /* Interrupt lines of the serial port and the i8042. */
    SB_IOCTL(KVM_IRQ_LINE),
    /* A virtio-net reset written by the guest (net_reset): offloads off,
     * vhost-net's backend detached and its ring indices read back. */
    SB_IOCTL(TUNSETOFFLOAD),
    SB_IOCTL(VHOST_NET_SET_BACKEND),
    SB_IOCTL(VHOST_GET_VRING_BASE),
    /* ... and the tap's or the serial input's place on the event loop. */
    SB_ALLOW(epoll_ctl),
    /* The serial port: input read when the guest makes room (stdin that
     * cannot be polled), output that waits for a full pipe. The kick,
     * exit and notify eventfds are written (write: common). */
    SB_ALLOW(read),
    SB_ALLOW(poll),
    /* The thread's end: glibc blocks signals, frees its stack, exits. */
    SB_ALLOW(rt_sigprocmask),
    SB_IF(madvise, SB_EQ(2, MADV_DONTNEED)),
    SB_ALLOW(exit),
};

SANDBOX_RULES(sandbox_rules_vcpu, SANDBOX_VCPU, "core", vcpu);
