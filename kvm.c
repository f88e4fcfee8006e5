#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"

#define CAP(name) { name, #name }
static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	CAP(KVM_CAP_USER_MEMORY),   CAP(KVM_CAP_IRQCHIP),
	CAP(KVM_CAP_PIT2),          CAP(KVM_CAP_SET_TSS_ADDR),
	CAP(KVM_CAP_SET_IDENTITY_MAP_ADDR), CAP(KVM_CAP_EXT_CPUID),
	CAP(KVM_CAP_MP_STATE),      CAP(KVM_CAP_IMMEDIATE_EXIT),
	CAP(KVM_CAP_IOEVENTFD),     CAP(KVM_CAP_IRQFD),
	CAP(KVM_CAP_USER_NMI),      CAP(KVM_CAP_ADJUST_CLOCK),
};

const char *kvm_missing_cap(int kvm_fd, const char *disabled)
{
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (disabled && strcmp(disabled, required_caps[i].name) == 0)
			return required_caps[i].name;
		if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0)
			return required_caps[i].name;
	}
	return NULL;
}

static int open_device(const char *path, int *fd)
{
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	if (errno == ENOENT || errno == ENODEV || errno == ENXIO) {
		vmm_err("%s does not exist: is KVM enabled in this kernel and is the "
			"kvm module loaded?", path);
		return VMM_EXIT_NO_KVM;
	}
	if (errno == EACCES || errno == EPERM) {
		vmm_err("%s: permission denied: run as root or add this user to the "
			"group that owns it (often 'kvm')", path);
		return VMM_EXIT_KVM_PERM;
	}
	vmm_perr("cannot open %s", path);
	return VMM_EXIT_NO_KVM;
}

static int check_vcpu_limit(int fd, unsigned ncpus)
{
	int max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max <= 0)
		max = 4; /* api.rst: assume 4 when neither capability answers */
	if (ncpus > (unsigned)max) {
		vmm_err("KVM supports at most %d vCPUs per VM; %u requested", max, ncpus);
		return VMM_EXIT_KVM_CAP;
	}
	return 0;
}

int kvm_open_checked(unsigned ncpus, int *out)
{
	const char *path = getenv("VMM_KVM_DEVICE");
	if (!path || !*path)
		path = "/dev/kvm";
	int fd, rc = open_device(path, &fd);
	if (rc)
		return rc;
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version < 0) {
		vmm_err("%s is not a KVM device (KVM_GET_API_VERSION failed: %s)", path,
			strerror(errno));
		close(fd);
		return VMM_EXIT_KVM_CAP;
	}
	if (version != KVM_API_VERSION) {
		vmm_err("%s speaks KVM API version %d; version %d is required", path, version,
			KVM_API_VERSION);
		close(fd);
		return VMM_EXIT_KVM_CAP;
	}
	const char *missing = kvm_missing_cap(fd, getenv("VMM_TEST_MISSING_CAP"));
	if (missing) {
		vmm_err("KVM lacks a required capability: %s", missing);
		close(fd);
		return VMM_EXIT_KVM_CAP;
	}
	rc = check_vcpu_limit(fd, ncpus);
	if (rc) {
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

static int vm_ioctl(struct vm *vm, unsigned long req, const char *name, unsigned long arg)
{
	if (ioctl(vm->vm_fd, req, arg) < 0) {
		vmm_perr("%s", name);
		return VMM_EXIT_RESOURCE;
	}
	return 0;
}

/*
 * Leave the 8259 pair as firmware would: initialised, vectors 0x20/0x28 and
 * every line masked but the cascade. KVM's reset state is uninitialised
 * with vector base 0 and nothing masked, and a guest that never programs
 * the PIC (a hardware-reduced ACPI Linux uses the IOAPIC only) would then
 * see a legacy IRQ arrive through LINT0's ExtINT as CPU exception 0-15.
 */
static int init_pic(struct vm *vm, unsigned chip_id, uint8_t irq_base, uint8_t imr)
{
	struct kvm_irqchip chip = { .chip_id = chip_id };
	if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0) {
		vmm_perr("KVM_GET_IRQCHIP");
		return VMM_EXIT_RESOURCE;
	}
	chip.chip.pic.irq_base = irq_base;
	chip.chip.pic.imr = imr;
	chip.chip.pic.init_state = 0; /* initialisation sequence complete */
	chip.chip.pic.init4 = 1;      /* ICW4 given: 8086 mode */
	if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0) {
		vmm_perr("KVM_SET_IRQCHIP");
		return VMM_EXIT_RESOURCE;
	}
	return 0;
}

int kvm_create_vm(struct vm *vm)
{
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		vmm_perr("KVM_CREATE_VM");
		return VMM_EXIT_RESOURCE;
	}
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size <= 0) {
		vmm_perr("KVM_GET_VCPU_MMAP_SIZE");
		return VMM_EXIT_RESOURCE;
	}
	/* Intel VMX needs these two pages for real-mode emulation; they sit in
	 * the MMIO hole, outside guest RAM, and e820 never reports them. */
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	int rc = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR",
			  (unsigned long)&idmap);
	if (!rc)
		rc = vm_ioctl(vm, KVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", KVM_TSS_ADDR);
	if (!rc)
		rc = vm_ioctl(vm, KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", 0);
	if (!rc)
		rc = init_pic(vm, KVM_IRQCHIP_PIC_MASTER, PIC_MASTER_VECTOR_BASE, PIC_MASTER_IMR);
	if (!rc)
		rc = init_pic(vm, KVM_IRQCHIP_PIC_SLAVE, PIC_SLAVE_VECTOR_BASE, PIC_SLAVE_IMR);
	if (rc)
		return rc;
	/* The speaker port (0x61) is emulated in the kernel with the PIT, which
	 * Linux uses to calibrate its TSC. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	return vm_ioctl(vm, KVM_CREATE_PIT2, "KVM_CREATE_PIT2", (unsigned long)&pit);
}
