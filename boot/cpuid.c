#include "cpuid.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../log.h"
#include "cpu_model.h"

_Static_assert(offsetof(struct cpuid_buf, entries) == offsetof(struct kvm_cpuid2, entries),
	       "cpuid_buf matches kvm_cpuid2");

#define LEAF_VENDOR 0x0
#define LEAF_FEATURES 0x1
#define LEAF_CACHE 0x4
#define LEAF_PMU 0xA
#define LEAF_TOPO 0xB
#define LEAF_TOPO2 0x1F
#define LEAF_KVM_SIG 0x40000000
#define LEAF_KVM_FEATURES 0x40000001
#define LEAF_AMD_SIZES 0x80000008
#define LEAF_AMD_TOPO 0x8000001E

#define TOPO_TYPE_SMT 1
#define TOPO_TYPE_CORE 2

#define VENDOR_AMD_EBX 0x68747541   /* "Auth" */
#define VENDOR_HYGON_EBX 0x6f677948 /* "Hygo" */

unsigned cpuid_core_shift(unsigned ncpus)
{
	unsigned s = 0;
	while ((1u << s) < ncpus)
		s++;
	return s;
}

const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *c, uint32_t function,
					  uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != function)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
			return e;
	}
	return NULL;
}

struct topo {
	unsigned apic_id;
	unsigned ncpus;
	unsigned shift;
	bool amd;
};

static void patch_leaf1(struct kvm_cpuid_entry2 *e, const struct topo *t)
{
	unsigned count = t->ncpus > 255 ? 255 : t->ncpus;
	e->ebx = (e->ebx & 0x0000ffffu) | (t->apic_id & 0xffu) << 24 | count << 16;
	e->ecx |= CPUID_1_ECX_HYPERVISOR | CPUID_1_ECX_X2APIC;
	if (t->ncpus > 1)
		e->edx |= CPUID_1_EDX_HTT;
	else
		e->edx &= ~CPUID_1_EDX_HTT;
}

static void patch_leaf4(struct kvm_cpuid_entry2 *e, const struct topo *t)
{
	if ((e->eax & 0x1f) == 0)
		return; /* no cache at this subleaf */
	uint32_t ids = (1u << t->shift) - 1;
	unsigned level = (e->eax >> 5) & 7;
	e->eax &= ~(0xfc000000u | 0x03ffc000u);
	e->eax |= (ids & 0x3f) << 26;
	if (level >= 3)
		e->eax |= (ids & 0xfff) << 14; /* shared by the whole package */
}

static void patch_amd(struct kvm_cpuid_entry2 *e, const struct topo *t)
{
	if (!t->amd)
		return;
	if (e->function == LEAF_AMD_SIZES) {
		e->ecx &= ~0xf0ffu;
		e->ecx |= ((t->ncpus - 1) & 0xff) | (t->shift & 0xf) << 12;
	} else if (e->function == LEAF_AMD_TOPO) {
		e->eax = t->apic_id;
		e->ebx = t->apic_id & 0xff; /* core id; one thread per core */
		e->ecx = 0;		    /* node 0, one node */
		e->edx = 0;
	}
}

static void patch(struct kvm_cpuid_entry2 *e, const struct topo *t)
{
	switch (e->function) {
	case LEAF_FEATURES:
		patch_leaf1(e, t);
		break;
	case LEAF_CACHE:
		patch_leaf4(e, t);
		break;
	case LEAF_PMU:
		e->eax = e->ebx = e->ecx = e->edx = 0;
		break;
	default:
		patch_amd(e, t);
		break;
	}
}

static bool rebuilt(uint32_t function)
{
	return function == LEAF_TOPO || function == LEAF_TOPO2 || function == LEAF_KVM_SIG ||
	       function == LEAF_KVM_FEATURES;
}

static int append(struct kvm_cpuid2 *out, unsigned cap, const struct kvm_cpuid_entry2 *e)
{
	if (out->nent >= cap)
		return -1;
	out->entries[out->nent++] = *e;
	return 0;
}

static int append_topology(struct kvm_cpuid2 *out, unsigned cap, uint32_t leaf,
			   const struct topo *t)
{
	struct kvm_cpuid_entry2 e[3];
	memset(e, 0, sizeof(e));
	for (unsigned i = 0; i < 3; i++) {
		e[i].function = leaf;
		e[i].index = i;
		e[i].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e[i].ecx = i;
		e[i].edx = t->apic_id;
	}
	e[0].eax = 0; /* SMT: one thread per core, no id bits */
	e[0].ebx = 1;
	e[0].ecx |= TOPO_TYPE_SMT << 8;
	e[1].eax = t->shift;
	e[1].ebx = t->ncpus;
	e[1].ecx |= TOPO_TYPE_CORE << 8;
	/* e[2]: level type 0, the end of the enumeration */
	for (unsigned i = 0; i < 3; i++)
		if (append(out, cap, &e[i]) < 0)
			return -1;
	return 0;
}

static int append_kvm(struct kvm_cpuid2 *out, unsigned cap, const struct kvm_cpuid2 *sup)
{
	const struct kvm_cpuid_entry2 *f = cpuid_find(sup, LEAF_KVM_FEATURES, 0);
	struct kvm_cpuid_entry2 sig = {
	    .function = LEAF_KVM_SIG,
	    .eax = LEAF_KVM_FEATURES,
	    .ebx = CPUID_SIG_KVM_EBX,
	    .ecx = CPUID_SIG_KVM_ECX,
	    .edx = CPUID_SIG_KVM_EDX,
	};
	struct kvm_cpuid_entry2 feat = {
	    .function = LEAF_KVM_FEATURES,
	    .eax = f ? f->eax & CPUID_KVM_FEATURES_ALLOWED : 0,
	};
	return append(out, cap, &sig) < 0 || append(out, cap, &feat) < 0 ? -1 : 0;
}

static int append_all_topology(struct kvm_cpuid2 *out, unsigned cap, const struct kvm_cpuid2 *sup,
			       const struct topo *t)
{
	const struct kvm_cpuid_entry2 *v = cpuid_find(sup, LEAF_VENDOR, 0);
	uint32_t max_basic = v ? v->eax : 0;
	if (max_basic >= LEAF_TOPO && append_topology(out, cap, LEAF_TOPO, t) < 0)
		return -1;
	if (max_basic >= LEAF_TOPO2 && cpuid_find(sup, LEAF_TOPO2, 0) &&
	    append_topology(out, cap, LEAF_TOPO2, t) < 0)
		return -1;
	return 0;
}

int cpuid_normalise(const struct kvm_cpuid2 *sup, struct kvm_cpuid2 *out, unsigned cap,
		    unsigned apic_id, unsigned ncpus)
{
	const struct kvm_cpuid_entry2 *v = cpuid_find(sup, LEAF_VENDOR, 0);
	struct topo t = {
	    .apic_id = apic_id,
	    .ncpus = ncpus ? ncpus : 1,
	    .amd = v && (v->ebx == VENDOR_AMD_EBX || v->ebx == VENDOR_HYGON_EBX),
	};
	t.shift = cpuid_core_shift(t.ncpus);
	out->nent = 0;
	for (uint32_t i = 0; i < sup->nent; i++) {
		struct kvm_cpuid_entry2 e = sup->entries[i];
		if (rebuilt(e.function))
			continue;
		patch(&e, &t);
		if (append(out, cap, &e) < 0)
			return -1;
	}
	if (append_all_topology(out, cap, sup, &t) < 0)
		return -1;
	return append_kvm(out, cap, sup);
}

static pthread_mutex_t sup_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cpuid_buf sup_cache;
static bool sup_loaded;

int cpuid_get_supported(int kvm_fd, struct cpuid_buf *dst)
{
	int rc = 0;
	pthread_mutex_lock(&sup_lock);
	if (!sup_loaded) {
		sup_cache.nent = CPUID_MAX_ENTRIES;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &sup_cache) < 0) {
			vmm_perr("KVM_GET_SUPPORTED_CPUID");
			rc = -1;
		} else {
			sup_loaded = true;
		}
	}
	if (rc == 0)
		*dst = sup_cache;
	pthread_mutex_unlock(&sup_lock);
	return rc;
}

int cpuid_setup(int kvm_fd, int vcpu_fd, const struct cpu_config *cpu, unsigned apic_id,
		unsigned ncpus)
{
	struct cpuid_buf *sup = malloc(2 * sizeof(*sup));
	struct cpuid_buf *out = sup + 1;
	char why[256];
	int rc = -1;
	if (!sup) {
		vmm_err("out of memory for the CPUID table");
		return -1;
	}
	if (cpuid_get_supported(kvm_fd, sup) < 0)
		goto done;
	if (cpuid_normalise((struct kvm_cpuid2 *)sup, (struct kvm_cpuid2 *)out, CPUID_MAX_ENTRIES,
			    apic_id, ncpus) < 0) {
		vmm_err("vCPU %u: CPUID table has more than %d entries", apic_id,
			CPUID_MAX_ENTRIES);
		goto done;
	}
	/* The model comes after the topology, so -x2apic or -hypervisor can
	 * take back what cpuid_normalise() sets. */
	if (cpu_model_apply(cpu, (struct kvm_cpuid2 *)sup, (struct kvm_cpuid2 *)out,
			    CPUID_MAX_ENTRIES, why, sizeof(why))) {
		vmm_err("vCPU %u: --cpu %s", apic_id, why);
		goto done;
	}
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, out) < 0) {
		vmm_perr("vCPU %u: KVM_SET_CPUID2", apic_id);
		goto done;
	}
	rc = 0;
done:
	free(sup);
	return rc;
}
