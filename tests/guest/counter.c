/* `counter`: count at CPL3 forever, for the host's pause/resume tests. */
#include "guest.h"

#define COUNTER_PERIOD_NS 50000000ULL /* a line every 50 ms */

/* Prints "COUNTER <n> ns=<kvmclock ns>" every 50 ms, n from 0, until the
 * host stops the VM: the line numbers must stop while the VM is paused
 * and go on after it resumes. Never returns (fails only without
 * kvmclock). */
bool test_counter(char *why, size_t n)
{
	if (kvmclock_init()) {
		snformat(why, n, "MSR_KVM_SYSTEM_TIME_NEW refused or clock never updated");
		return false;
	}
	uint64_t next = kvmclock_ns();
	for (uint64_t count = 0;; count++) {
		print("COUNTER %llu ns=%llu\n", (unsigned long long)count,
		      (unsigned long long)kvmclock_ns());
		next += COUNTER_PERIOD_NS;
		/* After a pause, carry on from now rather than catch up. */
		uint64_t now = kvmclock_ns();
		if (now > next + COUNTER_PERIOD_NS)
			next = now;
		while (kvmclock_ns() < next)
			cpu_relax();
	}
}
