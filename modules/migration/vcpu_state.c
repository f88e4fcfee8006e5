/*
 * One vCPU's saved state: CPUID, general and segment registers, FPU/XSAVE
 * and XCRs, every MSR KVM lists (kvmclock's and the TSC among them), the
 * LAPIC, the MP state, pending events, debug registers, and whatever
 * modules add (module.h vcpu_save, e.g. nested virtualization).
 *
 * Saving runs with the vCPU out of KVM_RUN (parked by a pause, after it
 * completed any pending I/O). Restoring follows the order KVM needs:
 * CPUID first (MSRs and XSAVE depend on it), segment registers (the APIC
 * base) before the LAPIC, the MP state and events last.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"
#include "mig.h"
#include "module.h"
#include "vmm.h"

#define MAX_MSRS 1024
#define MAX_CPUID_ENTRIES 512
#define MODULE_STATE_MAX (256 * 1024)

struct msr_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[MAX_MSRS];
};

struct cpuid_table {
	struct kvm_cpuid2 hdr;
	struct kvm_cpuid_entry2 e[MAX_CPUID_ENTRIES];
};

/* Bytes of the XSAVE area KVM hands out (KVM_GET_XSAVE2's size), 0 when
 * only KVM_GET_FPU works. */
size_t vcpu_xsave_size(int vm_fd)
{
	int n = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (n > (int)sizeof(struct kvm_xsave))
		return (size_t)n;
	return ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0 ? sizeof(struct kvm_xsave) : 0;
}

/* KVM's list of MSRs to save; *n entries in idx. The host's list does not
 * change: read once (a migration's final copy saves the vCPUs in the
 * downtime). */
static pthread_mutex_t msr_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t msr_list[MAX_MSRS], msr_count;
static bool msr_known;

static int msr_index_list(int kvm_fd, uint32_t *idx, uint32_t *n)
{
	int rc = 0;
	pthread_mutex_lock(&msr_lock);
	if (!msr_known) {
		struct {
			struct kvm_msr_list l;
			uint32_t idx[MAX_MSRS];
		} *list = calloc(1, sizeof(*list));
		rc = -1;
		if (list) {
			list->l.nmsrs = MAX_MSRS;
			rc = ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list);
			if (rc < 0)
				vmm_perr("KVM_GET_MSR_INDEX_LIST");
		}
		if (rc == 0) {
			msr_count = list->l.nmsrs;
			memcpy(msr_list, list->idx, msr_count * sizeof(*idx));
			msr_known = true;
		}
		free(list);
	}
	if (rc == 0) {
		*n = msr_count;
		memcpy(idx, msr_list, msr_count * sizeof(*idx));
	}
	pthread_mutex_unlock(&msr_lock);
	return rc;
}

/* Read every listed MSR KVM can read; an MSR it refuses is left out (a
 * batch stops at the first refusal, so go on after it). */
static int save_msrs(struct vcpu *v, struct blob *b)
{
	struct msr_buf *m = calloc(1, sizeof(*m));
	struct kvm_msr_entry *kept = calloc(MAX_MSRS, sizeof(*kept));
	uint32_t *idx = calloc(MAX_MSRS, sizeof(*idx)), n = 0, nkept = 0;
	int rc = -1;
	if (!m || !kept || !idx || msr_index_list(v->vm->kvm_fd, idx, &n) < 0)
		goto out;
	for (uint32_t i = 0; i < n;) {
		uint32_t batch = n - i;
		m->hdr.nmsrs = batch;
		for (uint32_t k = 0; k < batch; k++)
			m->e[k] = (struct kvm_msr_entry){.index = idx[i + k]};
		int got = ioctl(v->fd, KVM_GET_MSRS, m);
		if (got < 0) {
			vmm_perr("vCPU %u: KVM_GET_MSRS", v->index);
			goto out;
		}
		memcpy(kept + nkept, m->e, (size_t)got * sizeof(*kept));
		nkept += (uint32_t)got;
		i += (uint32_t)got + ((uint32_t)got < batch); /* skip the refused one */
	}
	rc = snap_add(b, SEC_VCPU_MSRS, v->index, kept, nkept * sizeof(*kept)) ? 0 : -1;
out:
	free(m);
	free(kept);
	free(idx);
	return rc;
}

static int save_cpuid(struct vcpu *v, struct blob *b)
{
	struct cpuid_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->hdr.nent = MAX_CPUID_ENTRIES;
	int rc = ioctl(v->fd, KVM_GET_CPUID2, t);
	if (rc < 0)
		vmm_perr("vCPU %u: KVM_GET_CPUID2", v->index);
	else if (!snap_add(b, SEC_VCPU_CPUID, v->index, t->e, t->hdr.nent * sizeof(t->e[0])))
		rc = -1;
	free(t);
	return rc;
}

/* One fixed-size KVM structure into a section. */
static int save_one(struct vcpu *v, struct blob *b, unsigned long req, const char *name,
		    uint32_t type, size_t size)
{
	uint8_t *buf = calloc(1, size);
	if (!buf)
		return -1;
	int rc = ioctl(v->fd, req, buf);
	if (rc < 0)
		vmm_err("vCPU %u: %s: %s", v->index, name, strerror(errno));
	else if (!snap_add(b, type, v->index, buf, size))
		rc = -1;
	free(buf);
	return rc;
}

#define SAVE(v, b, req, type, st) save_one(v, b, req, #req, type, sizeof(st))

static int save_fpu(struct vcpu *v, struct blob *b)
{
	size_t xs = vcpu_xsave_size(v->vm->vm_fd);
	if (xs > sizeof(struct kvm_xsave))
		return save_one(v, b, KVM_GET_XSAVE2, "KVM_GET_XSAVE2", SEC_VCPU_XSAVE, xs);
	if (xs)
		return SAVE(v, b, KVM_GET_XSAVE, SEC_VCPU_XSAVE, struct kvm_xsave);
	return SAVE(v, b, KVM_GET_FPU, SEC_VCPU_FPU, struct kvm_fpu);
}

/* Each module's extra state of this vCPU. */
static int save_modules(struct vcpu *v, struct blob *b)
{
	uint8_t *buf = malloc(sizeof(struct snap_module_hdr) + MODULE_STATE_MAX);
	int rc = buf ? 0 : -1;
	for (unsigned i = 0; rc == 0 && i < module_count(); i++) {
		const struct vmm_module *m = module_at(i);
		if (!m->vcpu_save)
			continue;
		struct snap_module_hdr *h = (struct snap_module_hdr *)buf;
		memset(h, 0, sizeof(*h));
		snprintf(h->module, sizeof(h->module), "%s", m->name);
		long len = m->vcpu_save(v, buf + sizeof(*h), MODULE_STATE_MAX);
		if (len < 0 || len > MODULE_STATE_MAX)
			rc = -1;
		else if (len > 0 &&
			 !snap_add(b, SEC_VCPU_MODULE, v->index, buf, sizeof(*h) + (size_t)len))
			rc = -1;
	}
	free(buf);
	return rc;
}

int vcpu_state_save(struct vcpu *v, struct blob *b)
{
	struct kvm_vcpu_events ev;
	if (save_cpuid(v, b) || SAVE(v, b, KVM_GET_REGS, SEC_VCPU_REGS, struct kvm_regs) ||
	    SAVE(v, b, KVM_GET_SREGS, SEC_VCPU_SREGS, struct kvm_sregs) || save_fpu(v, b) ||
	    save_msrs(v, b) || SAVE(v, b, KVM_GET_LAPIC, SEC_VCPU_LAPIC, struct kvm_lapic_state) ||
	    SAVE(v, b, KVM_GET_MP_STATE, SEC_VCPU_MP_STATE, struct kvm_mp_state) ||
	    SAVE(v, b, KVM_GET_VCPU_EVENTS, SEC_VCPU_EVENTS, ev) ||
	    SAVE(v, b, KVM_GET_DEBUGREGS, SEC_VCPU_DEBUGREGS, struct kvm_debugregs))
		return -1;
	if (ioctl(v->vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0 &&
	    SAVE(v, b, KVM_GET_XCRS, SEC_VCPU_XCRS, struct kvm_xcrs))
		return -1;
	return save_modules(v, b);
}

/* ---- checks before anything is changed ---- */

static bool sized(const struct snap_view *s, uint32_t type, unsigned i, size_t size, bool must,
		  char *why, size_t n)
{
	const struct snap_section *sec = snap_find(s, type, i);
	if (!sec && !must)
		return true;
	if (!sec || sec->len != size) {
		snprintf(why, n, "vCPU %u: section %#x %s (expected %zu bytes)", i, type,
			 sec ? "has the wrong size" : "is missing", size);
		return false;
	}
	return true;
}

static bool arrayed(const struct snap_view *s, uint32_t type, unsigned i, size_t elem, size_t max,
		    char *why, size_t n)
{
	const struct snap_section *sec = snap_find(s, type, i);
	if (!sec || sec->len % elem || sec->len / elem > max) {
		snprintf(why, n, "vCPU %u: section %#x is missing or malformed", i, type);
		return false;
	}
	return true;
}

static bool check_modules(const struct snap_view *s, unsigned i, char *why, size_t n)
{
	for (size_t k = 0; k < s->nsec; k++) {
		const struct snap_section *sec = &s->sec[k];
		if (sec->type != SEC_VCPU_MODULE || sec->instance != i)
			continue;
		struct snap_module_hdr h;
		if (sec->len < sizeof(h)) {
			snprintf(why, n, "vCPU %u: malformed module state", i);
			return false;
		}
		memcpy(&h, sec->data, sizeof(h));
		h.module[sizeof(h.module) - 1] = 0;
		const struct vmm_module *m = module_find(h.module);
		if (!m || !m->vcpu_restore) {
			snprintf(why, n,
				 "vCPU %u carries state of module %s, which this VMM does not have "
				 "(not built in)",
				 i, h.module);
			return false;
		}
	}
	return true;
}

int vcpu_state_check(const struct snap_view *s, unsigned i, size_t xsave_size, char *why, size_t n)
{
	bool ok = sized(s, SEC_VCPU_REGS, i, sizeof(struct kvm_regs), true, why, n) &&
		  sized(s, SEC_VCPU_SREGS, i, sizeof(struct kvm_sregs), true, why, n) &&
		  sized(s, SEC_VCPU_LAPIC, i, sizeof(struct kvm_lapic_state), true, why, n) &&
		  sized(s, SEC_VCPU_MP_STATE, i, sizeof(struct kvm_mp_state), true, why, n) &&
		  sized(s, SEC_VCPU_EVENTS, i, sizeof(struct kvm_vcpu_events), true, why, n) &&
		  sized(s, SEC_VCPU_DEBUGREGS, i, sizeof(struct kvm_debugregs), true, why, n) &&
		  sized(s, SEC_VCPU_XCRS, i, sizeof(struct kvm_xcrs), false, why, n) &&
		  arrayed(s, SEC_VCPU_MSRS, i, sizeof(struct kvm_msr_entry), MAX_MSRS, why, n) &&
		  arrayed(s, SEC_VCPU_CPUID, i, sizeof(struct kvm_cpuid_entry2), MAX_CPUID_ENTRIES,
			  why, n) &&
		  check_modules(s, i, why, n);
	if (!ok)
		return -1;
	if (xsave_size ? !sized(s, SEC_VCPU_XSAVE, i, xsave_size, true, why, n)
		       : !sized(s, SEC_VCPU_FPU, i, sizeof(struct kvm_fpu), true, why, n)) {
		snprintf(why, n,
			 "vCPU %u: the FPU state does not fit this host's (XSAVE area of %zu "
			 "bytes here)",
			 i, xsave_size);
		return -1;
	}
	return 0;
}

/* ---- restore ---- */

static int set_one(struct vcpu *v, const struct snap_view *s, uint32_t type, unsigned long req,
		   const char *name)
{
	const struct snap_section *sec = snap_find(s, type, v->index);
	if (!sec)
		return 0; /* optional, checked before */
	void *buf = malloc(sec->len);
	if (!buf)
		return -1;
	memcpy(buf, sec->data, sec->len); /* KVM wants it aligned and writable */
	int rc = ioctl(v->fd, req, buf);
	if (rc < 0)
		vmm_err("vCPU %u: %s: %s", v->index, name, strerror(errno));
	free(buf);
	return rc;
}

#define SET(v, s, type, req) set_one(v, s, type, req, #req)

static int set_cpuid(struct vcpu *v, const struct snap_view *s)
{
	const struct snap_section *sec = snap_find(s, SEC_VCPU_CPUID, v->index);
	struct cpuid_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->hdr.nent = (uint32_t)(sec->len / sizeof(t->e[0]));
	memcpy(t->e, sec->data, sec->len);
	int rc = ioctl(v->fd, KVM_SET_CPUID2, t);
	if (rc < 0)
		vmm_perr("vCPU %u: KVM_SET_CPUID2", v->index);
	free(t);
	return rc;
}

static int set_msrs(struct vcpu *v, const struct snap_view *s)
{
	const struct snap_section *sec = snap_find(s, SEC_VCPU_MSRS, v->index);
	struct msr_buf *m = calloc(1, sizeof(*m));
	if (!m)
		return -1;
	m->hdr.nmsrs = (uint32_t)(sec->len / sizeof(m->e[0]));
	memcpy(m->e, sec->data, sec->len);
	int got = ioctl(v->fd, KVM_SET_MSRS, m);
	int rc = 0;
	if (got < 0 || (uint32_t)got != m->hdr.nmsrs) {
		if (got < 0)
			vmm_perr("vCPU %u: KVM_SET_MSRS", v->index);
		else
			vmm_err("vCPU %u: KVM refused MSR %#x from the snapshot", v->index,
				m->e[got].index);
		rc = -1;
	}
	free(m);
	return rc;
}

static int set_events(struct vcpu *v, const struct snap_view *s)
{
	const struct snap_section *sec = snap_find(s, SEC_VCPU_EVENTS, v->index);
	struct kvm_vcpu_events ev;
	memcpy(&ev, sec->data, sizeof(ev));
	/* What the saved structure holds is valid, NMI and SIPI included. */
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0) {
		vmm_perr("vCPU %u: KVM_SET_VCPU_EVENTS", v->index);
		return -1;
	}
	return 0;
}

static int restore_modules(struct vcpu *v, const struct snap_view *s)
{
	for (size_t k = 0; k < s->nsec; k++) {
		const struct snap_section *sec = &s->sec[k];
		if (sec->type != SEC_VCPU_MODULE || sec->instance != v->index)
			continue;
		struct snap_module_hdr h;
		memcpy(&h, sec->data, sizeof(h));
		h.module[sizeof(h.module) - 1] = 0;
		const struct vmm_module *m = module_find(h.module);
		if (m->vcpu_restore(v, sec->data + sizeof(h), sec->len - sizeof(h)) < 0)
			return -1;
	}
	return 0;
}

int vcpu_state_restore(struct vcpu *v, const struct snap_view *s)
{
	if (set_cpuid(v, s) || SET(v, s, SEC_VCPU_SREGS, KVM_SET_SREGS) ||
	    SET(v, s, SEC_VCPU_REGS, KVM_SET_REGS) || SET(v, s, SEC_VCPU_XSAVE, KVM_SET_XSAVE) ||
	    SET(v, s, SEC_VCPU_FPU, KVM_SET_FPU) || SET(v, s, SEC_VCPU_XCRS, KVM_SET_XCRS) ||
	    SET(v, s, SEC_VCPU_LAPIC, KVM_SET_LAPIC) || set_msrs(v, s) ||
	    SET(v, s, SEC_VCPU_MP_STATE, KVM_SET_MP_STATE) || set_events(v, s) ||
	    SET(v, s, SEC_VCPU_DEBUGREGS, KVM_SET_DEBUGREGS))
		return -1;
	return restore_modules(v, s);
}
