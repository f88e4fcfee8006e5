/*
 * The main thread's allow-list, on top of filter_common.c: the event loop
 * (loop.c) and everything it runs once the VM is built. That is the
 * devices' I/O (virtio-blk engines, taps, vhost-net, the console), the
 * API's handlers (api/backend.c, api/metrics.c), pausing and stopping the
 * vCPUs, and the teardown at exit. Building the VM happens before this
 * filter goes in: nothing here creates a VM, a vCPU, guest RAM, a thread
 * or a socket.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vhost.h>
#include <signal.h>

#include "../vcpu.h"
#include "sandbox.h"

static const struct sandbox_rule main_rules[] = {
    /* The loop itself, hottest first. */
    SB_ALLOW(epoll_wait),
    SB_ALLOW(read),
    SB_ALLOW(io_uring_enter),
    /* Tap transmit (one writev per frame; receive is read()). */
    SB_ALLOW(writev),
    SB_ALLOW(epoll_ctl),
    /* The sync block engine, and the probe read of a swapped image. */
    SB_ALLOW(preadv),
    SB_ALLOW(pwritev2),
    SB_ALLOW(pread64),
    SB_ALLOW(fdatasync),
    /* DISCARD and WRITE_ZEROES; the balloon gives guest pages back by
     * punching holes in guest RAM's memfd, or with MADV_DONTNEED where
     * RAM is anonymous (--mem-thp, --mem-merge). Only these two modes. */
    SB_IF(fallocate, SB_EQ(1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)),
    SB_IF(fallocate, SB_EQ(1, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)),
    SB_IF(madvise, SB_EQ(2, MADV_DONTNEED)),
    /* Interrupts from the loop: serial input, the i8042's keys. */
    SB_IOCTL(KVM_IRQ_LINE),
    /* A virtio-net driver's first notify: offloads, vhost-net's rings. */
    SB_IOCTL(TUNSETOFFLOAD),
    SB_IOCTL(VHOST_SET_FEATURES),
    SB_IOCTL(VHOST_SET_VRING_NUM),
    SB_IOCTL(VHOST_SET_VRING_BASE),
    SB_IOCTL(VHOST_SET_VRING_ADDR),
    SB_IOCTL(VHOST_SET_VRING_KICK),
    SB_IOCTL(VHOST_SET_VRING_CALL),
    SB_IOCTL(VHOST_NET_SET_BACKEND),
    SB_IOCTL(VHOST_GET_VRING_BASE),
    /* Teardown: the devices' ioeventfds and irqfds are deassigned. */
    SB_IOCTL(KVM_IOEVENTFD),
    SB_IOCTL(KVM_IRQFD),
    /* PATCH /drives: the new image is opened, sized, locked and probed
     * like the first (virtio/disk.c); PUT /logger and PUT /metrics open
     * their files. */
    SB_ALLOW(openat),
    SB_ALLOW(close),
    SB_ALLOW(newfstatat),
    SB_IOCTL(BLKGETSIZE64),
    SB_IF(fcntl, SB_EQ(1, F_OFD_SETLK)),
    /* Metrics every period; PATCH /balloon/statistics re-arms the
     * balloon's statistics timer. */
    SB_ALLOW(timerfd_create),
    SB_ALLOW(timerfd_settime),
    /* Pause and stop: kick the vCPU threads (pthread_kill), wait. */
    SB_IF(tgkill, SB_EQ(2, VCPU_KICK_SIGNAL)),
    SB_ALLOW(getpid),
    SB_ALLOW(rt_sigprocmask),
    SB_ALLOW(clock_nanosleep),
    /* malloc (the main arena grows with brk, big blocks are mappings;
     * never executable), and unmapping guest RAM, rings and kvm_run at
     * teardown. */
    SB_ALLOW(brk),
    SB_NO_EXEC(mmap),
    SB_ALLOW(munmap),
    SB_ALLOW(mremap),
    /* Exit: the API socket file is removed. */
    SB_ALLOW(unlink),
};

SANDBOX_RULES(sandbox_rules_main, SANDBOX_MAIN, "core", main_rules);
