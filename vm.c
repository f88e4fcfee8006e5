/* VM-wide services used by devices: exit requests and interrupt lines. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

void vm_request_exit(struct vm *vm, int status)
{
	int none = -1;
	if (!atomic_compare_exchange_strong(&vm->exit_status, &none, status))
		return; /* an earlier request already decided the status */
	uint64_t one = 1;
	/* The eventfd wakes the main loop, which stops the vCPUs. */
	if (vm->exit_efd >= 0 && write(vm->exit_efd, &one, sizeof(one)) < 0) {
		/* Counter overflow is impossible with one write; nothing to do. */
	}
}

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return -errno;
	return 0;
}
