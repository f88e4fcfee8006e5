/* KVM bring-up against the real /dev/kvm (skipped where it is unusable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "kvm.h"

static int open_kvm_or_skip(void)
{
	int fd;
	if (access("/dev/kvm", R_OK | W_OK) != 0 || kvm_open_checked(1, &fd) != 0)
		skip();
	return fd;
}

static void pic_starts_initialised_and_masked(void **state)
{
	(void)state;
	struct vm vm;
	memset(&vm, 0, sizeof(vm));
	vm.kvm_fd = open_kvm_or_skip();
	assert_int_equal(kvm_create_vm(&vm), 0);
	static const struct {
		unsigned id;
		uint8_t base, imr;
	} want[] = {
		{ KVM_IRQCHIP_PIC_MASTER, PIC_MASTER_VECTOR_BASE, PIC_MASTER_IMR },
		{ KVM_IRQCHIP_PIC_SLAVE, PIC_SLAVE_VECTOR_BASE, PIC_SLAVE_IMR },
	};
	for (size_t i = 0; i < 2; i++) {
		struct kvm_irqchip chip = { .chip_id = want[i].id };
		assert_int_equal(ioctl(vm.vm_fd, KVM_GET_IRQCHIP, &chip), 0);
		assert_int_equal(chip.chip.pic.irq_base, want[i].base);
		assert_int_equal(chip.chip.pic.imr, want[i].imr);
		assert_int_equal(chip.chip.pic.init_state, 0);
		/* No vector the PIC can deliver lands on a CPU exception. */
		assert_true(chip.chip.pic.irq_base >= 0x20);
	}
	close(vm.vm_fd);
	close(vm.kvm_fd);
}

static void every_required_capability_checked(void **state)
{
	(void)state;
	int fd = open_kvm_or_skip();
	assert_null(kvm_missing_cap(fd, NULL));
	assert_string_equal(kvm_missing_cap(fd, "KVM_CAP_IRQFD"), "KVM_CAP_IRQFD");
	/* A name that is not on the list disables nothing. */
	assert_null(kvm_missing_cap(fd, "KVM_CAP_NOT_A_CAP"));
	close(fd);
}

static void too_many_vcpus_refused(void **state)
{
	(void)state;
	int fd = open_kvm_or_skip();
	close(fd);
	int max = 0;
	int probe = kvm_open_checked(1, &fd);
	assert_int_equal(probe, 0);
	max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	close(fd);
	if (max <= 0)
		skip();
	assert_int_equal(kvm_open_checked((unsigned)max + 1, &fd), VMM_EXIT_KVM_CAP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pic_starts_initialised_and_masked),
		cmocka_unit_test(every_required_capability_checked),
		cmocka_unit_test(too_many_vcpus_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
