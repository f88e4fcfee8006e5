/*
 * A vCPU's nested state in snapshots and migration: the module's
 * vcpu_save / vcpu_restore hooks (module.h).
 *
 * The record is struct kvm_nested_state as KVM_GET_NESTED_STATE gives it
 * (the 128-byte header, then the VMCS12 or VMCB12 pages), unchanged: its
 * header already says its format (VMX or SVM) and size. A vCPU that never
 * used nesting (not in VMX operation, not in a nested guest) carries no
 * record, so such a guest still restores on a host without nesting.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"
#include "nested.h"

#define NO_VMXON (~0ull) /* vmxon_pa when the vCPU is not in VMX operation */

bool nested_state_in_use(const struct kvm_nested_state *hdr)
{
	if (hdr->flags & KVM_STATE_NESTED_GUEST_MODE)
		return true;
	return hdr->format == KVM_STATE_NESTED_FORMAT_VMX && hdr->hdr.vmx.vmxon_pa != NO_VMXON;
}

static enum cpu_vendor format_vendor(uint16_t format)
{
	return format == KVM_STATE_NESTED_FORMAT_VMX ? CPU_VENDOR_INTEL : CPU_VENDOR_AMD;
}

static const char *format_name(uint16_t format)
{
	return format == KVM_STATE_NESTED_FORMAT_VMX ? "Intel VMX" : "AMD SVM";
}

enum nested_record nested_record_check(const void *data, size_t len, enum cpu_vendor host, int max,
				       char *why, size_t n)
{
	struct kvm_nested_state hdr;
	if (len < sizeof(hdr)) {
		snprintf(why, n, "a record of %zu bytes is shorter than its header (%zu)", len,
			 sizeof(hdr));
		return NESTED_RECORD_BAD;
	}
	memcpy(&hdr, data, sizeof(hdr)); /* data need not be aligned */
	if (hdr.size != len) {
		snprintf(why, n, "the header says %u bytes, the record has %zu", hdr.size, len);
		return NESTED_RECORD_BAD;
	}
	if (hdr.format != KVM_STATE_NESTED_FORMAT_VMX &&
	    hdr.format != KVM_STATE_NESTED_FORMAT_SVM) {
		snprintf(why, n, "unknown format %u", hdr.format);
		return NESTED_RECORD_BAD;
	}
	if (!nested_state_in_use(&hdr))
		return NESTED_RECORD_SKIP;
	if (format_vendor(hdr.format) != host) {
		snprintf(why, n, "it holds %s state, which this host's CPU cannot run",
			 format_name(hdr.format));
		return NESTED_RECORD_BAD;
	}
	if (max <= 0) {
		snprintf(why, n,
			 "the guest was running nested guests, and this host's KVM does not report "
			 "KVM_CAP_NESTED_STATE");
		return NESTED_RECORD_BAD;
	}
	if (len > (size_t)max) {
		snprintf(why, n, "%zu bytes, more than this host's KVM takes (%d)", len, max);
		return NESTED_RECORD_BAD;
	}
	return NESTED_RECORD_LOAD;
}

static int state_max(struct vcpu *v)
{
	return ioctl(v->vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
}

long nested_vcpu_save(struct vcpu *v, void *buf, size_t cap)
{
	int max = state_max(v);
	if (max <= 0)
		return 0; /* no nesting on this host: the guest cannot be using it */
	if (cap < (size_t)max) {
		vmm_err("vCPU %u: nested state needs up to %d bytes, %zu given", v->index, max,
			cap);
		return -1;
	}
	struct kvm_nested_state hdr = {.size = (uint32_t)max};
	memcpy(buf, &hdr, sizeof(hdr));
	if (ioctl(v->fd, KVM_GET_NESTED_STATE, buf) < 0) {
		vmm_perr("vCPU %u: KVM_GET_NESTED_STATE", v->index);
		return -1;
	}
	memcpy(&hdr, buf, sizeof(hdr));
	return nested_state_in_use(&hdr) ? (long)hdr.size : 0;
}

int nested_vcpu_restore(struct vcpu *v, const void *data, size_t len)
{
	char why[256];
	enum nested_record r = nested_record_check(data, len, nested_host_vendor(v->vm->kvm_fd),
						   state_max(v), why, sizeof(why));
	if (r == NESTED_RECORD_BAD) {
		vmm_err("vCPU %u: cannot restore its nested state: %s", v->index, why);
		return -1;
	}
	if (r == NESTED_RECORD_SKIP)
		return 0;
	struct kvm_nested_state hdr;
	memcpy(&hdr, data, sizeof(hdr)); /* checked: len covers it */
	const char *ext = hdr.format == KVM_STATE_NESTED_FORMAT_VMX ? "vmx" : "svm";
	/* KVM takes nested state only for a vCPU whose CPUID shows the
	 * extension and whose CR4.VMXE / EFER.SVME and MSRs are restored. */
	if (ioctl(v->fd, KVM_SET_NESTED_STATE, data) < 0) {
		vmm_err("vCPU %u: KVM_SET_NESTED_STATE: %s (its CPU model must show %s: --cpu "
			"...,+%s)",
			v->index, strerror(errno), ext, ext);
		return -1;
	}
	return 0;
}
