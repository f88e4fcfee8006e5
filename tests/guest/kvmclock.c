/* kvmclock (pvclock) and time helpers; all reads happen at CPL3. */
#include "guest.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

struct pvclock_vcpu_time_info {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
} __attribute__((packed));

/* Identity-mapped user-readable like all RAM; part of the image, so the
 * memtest never touches it. */
static volatile struct pvclock_vcpu_time_info pvti __attribute__((aligned(64)));
static bool have_kvmclock;
static uint64_t tsc_khz;
static uint64_t tsc_mult; /* ns per TSC tick, 32.32 fixed point */

int kvmclock_init(void)
{
	if (have_kvmclock)
		return 0;
	if (sys_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&pvti | 1))
		return -1;
	/* KVM fills the page before the next guest entry; allow for a slow one. */
	for (unsigned i = 0; i < 10000000 && !pvti.version; i++)
		cpu_relax();
	if (!pvti.version)
		return -1;
	have_kvmclock = true;
	return 0;
}

uint64_t kvmclock_ns(void)
{
	uint32_t v;
	uint64_t tsc, ts, st;
	uint32_t mul;
	int8_t shift;
	do {
		v = pvti.version;
		barrier();
		tsc = rdtsc();
		ts = pvti.tsc_timestamp;
		st = pvti.system_time;
		mul = pvti.tsc_to_system_mul;
		shift = pvti.tsc_shift;
		barrier();
	} while ((v & 1) || v != pvti.version);
	uint64_t delta = tsc - ts;
	if ((int64_t)delta < 0)
		delta = 0;
	if (shift < 0)
		delta >>= -shift;
	else
		delta <<= shift;
	return st + (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

void time_init(void)
{
	if (kvmclock_init() == 0 || tsc_khz)
		return;
	uint32_t r[4];
	cpuid(0, 0, r);
	uint32_t max = r[0];
	if (max >= 0x15) {
		cpuid(0x15, 0, r); /* TSC/crystal ratio; ecx = crystal Hz */
		if (r[0] && r[1] && r[2])
			tsc_khz = (uint64_t)r[2] * r[1] / r[0] / 1000;
	}
	if (!tsc_khz && max >= 0x16) {
		cpuid(0x16, 0, r); /* base MHz */
		tsc_khz = (uint64_t)(r[0] & 0xffff) * 1000;
	}
	if (!tsc_khz)
		tsc_khz = 3000000; /* a guess; only bounds waits */
	tsc_mult = (1000000ULL << 32) / tsc_khz;
}

uint64_t time_ns(void)
{
	if (have_kvmclock)
		return kvmclock_ns();
	return (uint64_t)(((unsigned __int128)rdtsc() * tsc_mult) >> 32);
}

const char *time_source(void)
{
	return have_kvmclock ? "kvmclock" : "tsc";
}

void udelay(uint64_t us)
{
	uint64_t end = time_ns() + us * 1000;
	while (time_ns() < end)
		cpu_relax();
}

bool test_kvmclock(char *why, size_t n)
{
	if (kvmclock_init()) {
		snformat(why, n, "MSR_KVM_SYSTEM_TIME_NEW refused or clock never updated");
		return false;
	}
	uint64_t start = kvmclock_ns();
	print("KVMCLOCK start ns=%llu\n", (unsigned long long)start);
	/* Measure from after the print, like the host sees the line. */
	uint64_t t0 = kvmclock_ns(), prev = t0, end = t0 + opt.sleep_ms * 1000000;
	uint64_t now;
	do {
		now = kvmclock_ns();
		if (now < prev) {
			snformat(why, n, "time went backwards: %llu after %llu",
				 (unsigned long long)now, (unsigned long long)prev);
			return false;
		}
		prev = now;
		cpu_relax();
	} while (now < end);
	uint64_t fin = kvmclock_ns();
	print("KVMCLOCK end ns=%llu elapsed_ms=%llu\n", (unsigned long long)fin,
	      (unsigned long long)((fin - start) / 1000000));
	if (fin <= start) {
		snformat(why, n, "time does not advance");
		return false;
	}
	return true;
}
