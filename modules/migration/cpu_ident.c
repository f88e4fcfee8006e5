/*
 * Which CPU a saved state belongs to. A vCPU's state (its CPUID table, the
 * XSAVE layout, MSRs) only makes sense on a CPU that offers the same
 * features, so a snapshot records the host's vendor, family/model/stepping
 * and a hash of the feature leaves KVM supports there, and a restore on a
 * host that differs is refused.
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "boot/cpuid.h"
#include "log.h"
#include "mig.h"

/* The leaves (and registers) whose bits are CPU features a guest may use. */
static const struct {
	uint32_t function, index;
	uint8_t regs; /* bit 0 eax, 1 ebx, 2 ecx, 3 edx */
} feature_leaves[] = {
    {1, 0, 0xc},   {7, 0, 0xe},		 {7, 1, 0x1},	       {0xd, 0, 0x9},
    {0xd, 1, 0x1}, {0x80000001, 0, 0xc}, {0x80000007, 0, 0x8}, {0x80000008, 0, 0x3},
};

static uint64_t fnv1a(uint64_t h, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == fn &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == idx))
			return e;
	}
	return NULL;
}

static uint64_t feature_hash(const struct kvm_cpuid2 *sup)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < sizeof(feature_leaves) / sizeof(feature_leaves[0]); i++) {
		const struct kvm_cpuid_entry2 *e =
		    find(sup, feature_leaves[i].function, feature_leaves[i].index);
		uint32_t r[4] = {0};
		if (e)
			r[0] = e->eax, r[1] = e->ebx, r[2] = e->ecx, r[3] = e->edx;
		for (int k = 0; k < 4; k++)
			if (feature_leaves[i].regs & (1u << k))
				h = fnv1a(h, r[k]);
	}
	return h;
}

/* KVM's supported CPUID comes from boot/cpuid.c, which reads it once per
 * process (and vm_prewarm() reads it ahead). */
static int supported_hash(int kvm_fd, uint64_t *out)
{
	struct cpuid_buf *sup = malloc(sizeof(*sup));
	if (!sup) {
		vmm_err("out of memory");
		return -1;
	}
	int rc = cpuid_get_supported(kvm_fd, sup);
	if (rc == 0)
		*out = feature_hash((const struct kvm_cpuid2 *)sup);
	free(sup);
	return rc < 0 ? -1 : 0;
}

/* The host does not change under a running process: asked once (KVM's
 * supported CPUID takes most of a millisecond here). */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cpu_ident cache;
static bool cached;

static int ident_uncached(int kvm_fd, struct cpu_ident *out)
{
	unsigned a, b, c, d;
	memset(out, 0, sizeof(*out));
	__cpuid(0, a, b, c, d);
	memcpy(out->vendor, &b, 4);
	memcpy(out->vendor + 4, &d, 4);
	memcpy(out->vendor + 8, &c, 4);
	__cpuid(1, a, b, c, d);
	out->signature = a;
	int fd = kvm_fd;
	if (fd < 0) {
		const char *path = getenv("VMM_KVM_DEVICE");
		fd = open(path && *path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			vmm_perr("cannot open the KVM device to read this host's CPU features");
			return -1;
		}
	}
	int rc = supported_hash(fd, &out->features);
	if (fd != kvm_fd)
		close(fd);
	return rc;
}

int cpu_ident_host(int kvm_fd, struct cpu_ident *out)
{
	int rc = 0;
	pthread_mutex_lock(&cache_lock);
	if (!cached && (rc = ident_uncached(kvm_fd, &cache)) == 0)
		cached = true;
	if (rc == 0)
		*out = cache;
	pthread_mutex_unlock(&cache_lock);
	return rc;
}

static void describe(const struct cpu_ident *c, char *buf, size_t n)
{
	unsigned fam = (c->signature >> 8) & 0xf, model = (c->signature >> 4) & 0xf;
	if (fam == 0xf)
		fam += (c->signature >> 20) & 0xff;
	if (fam == 6 || fam >= 0xf)
		model |= ((c->signature >> 16) & 0xf) << 4;
	snprintf(buf, n, "%.12s family %u model %u stepping %u", c->vendor, fam, model,
		 c->signature & 0xf);
}

bool cpu_ident_match(const struct cpu_ident *saved, const struct cpu_ident *host, char *why,
		     size_t n)
{
	char a[96], b[96];
	describe(saved, a, sizeof(a));
	describe(host, b, sizeof(b));
	if (memcmp(saved->vendor, host->vendor, 12) != 0 || saved->signature != host->signature) {
		snprintf(why, n, "a different CPU (%s; this host: %s)", a, b);
		return false;
	}
	if (saved->features != host->features) {
		snprintf(why, n,
			 "a CPU with other features (%s, KVM feature hash %016llx; this host's: "
			 "%016llx)",
			 a, (unsigned long long)saved->features,
			 (unsigned long long)host->features);
		return false;
	}
	return true;
}
