#include "msr.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../log.h"

struct boot_msr {
	uint32_t index;
	uint64_t value;
};

static const struct boot_msr boot_msrs[] = {
    {MSR_IA32_SYSENTER_CS, 0},
    {MSR_IA32_SYSENTER_ESP, 0},
    {MSR_IA32_SYSENTER_EIP, 0},
    {MSR_STAR, 0},
    {MSR_LSTAR, 0},
    {MSR_CSTAR, 0},
    {MSR_SYSCALL_MASK, 0},
    {MSR_KERNEL_GS_BASE, 0},
    {MSR_IA32_TSC, 0},
    {MSR_IA32_MISC_ENABLE, 0}, /* value: current | fast strings */
    {MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_WB_ENABLED},
};
_Static_assert(sizeof(boot_msrs) / sizeof(boot_msrs[0]) <= MSR_BOOT_MAX, "MSR_BOOT_MAX");

static bool listed(const uint32_t *supported, unsigned n, uint32_t index)
{
	for (unsigned i = 0; i < n; i++)
		if (supported[i] == index)
			return true;
	return false;
}

unsigned msr_boot_entries(const uint32_t *supported, unsigned n, uint64_t misc_enable,
			  struct kvm_msr_entry *out, unsigned cap)
{
	unsigned count = 0;
	for (size_t i = 0; i < sizeof(boot_msrs) / sizeof(boot_msrs[0]) && count < cap; i++) {
		const struct boot_msr *b = &boot_msrs[i];
		if (!listed(supported, n, b->index))
			continue;
		memset(&out[count], 0, sizeof(out[count]));
		out[count].index = b->index;
		out[count].data = b->index == MSR_IA32_MISC_ENABLE
				      ? misc_enable | MISC_ENABLE_FAST_STRING
				      : b->value;
		count++;
	}
	return count;
}

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kvm_msr_list *list_cache;

static struct kvm_msr_list *fetch_list(int kvm_fd)
{
	struct kvm_msr_list probe = {.nmsrs = 0};
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
		vmm_perr("KVM_GET_MSR_INDEX_LIST");
		return NULL;
	}
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l) {
		vmm_err("out of memory for the MSR list");
		return NULL;
	}
	l->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		vmm_perr("KVM_GET_MSR_INDEX_LIST");
		free(l);
		return NULL;
	}
	return l;
}

/* The cached list lives until exit. */
static const struct kvm_msr_list *get_list(int kvm_fd)
{
	pthread_mutex_lock(&list_lock);
	if (!list_cache)
		list_cache = fetch_list(kvm_fd);
	const struct kvm_msr_list *l = list_cache;
	pthread_mutex_unlock(&list_lock);
	return l;
}

struct msr_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry entries[MSR_BOOT_MAX];
};

static int read_misc_enable(int vcpu_fd, const struct kvm_msr_list *l, uint64_t *val)
{
	struct msr_buf b = {.hdr.nmsrs = 1};
	*val = 0;
	if (!listed(l->indices, l->nmsrs, MSR_IA32_MISC_ENABLE))
		return 0;
	b.entries[0].index = MSR_IA32_MISC_ENABLE;
	if (ioctl(vcpu_fd, KVM_GET_MSRS, &b) != 1)
		return -1;
	*val = b.entries[0].data;
	return 0;
}

int msr_setup(int kvm_fd, int vcpu_fd, unsigned index)
{
	const struct kvm_msr_list *l = get_list(kvm_fd);
	struct msr_buf b;
	uint64_t misc;
	if (!l)
		return -1;
	if (read_misc_enable(vcpu_fd, l, &misc) < 0) {
		vmm_perr("vCPU %u: KVM_GET_MSRS (IA32_MISC_ENABLE)", index);
		return -1;
	}
	memset(&b, 0, sizeof(b));
	b.hdr.nmsrs = msr_boot_entries(l->indices, l->nmsrs, misc, b.entries, MSR_BOOT_MAX);
	int rc = ioctl(vcpu_fd, KVM_SET_MSRS, &b);
	if (rc < 0 || (unsigned)rc != b.hdr.nmsrs) {
		if (rc >= 0 && (unsigned)rc < b.hdr.nmsrs)
			vmm_err("vCPU %u: KVM_SET_MSRS refused MSR 0x%x", index,
				b.entries[rc].index);
		else
			vmm_perr("vCPU %u: KVM_SET_MSRS", index);
		return -1;
	}
	return 0;
}
