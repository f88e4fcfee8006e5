/*
 * What the migration module's work needs beyond the core allow-lists
 * (seccomp/sandbox.h, SANDBOX_EXTRA). All of it is on the main thread's
 * list:
 *
 *   - snapshot create runs on the event loop (the main thread): it reads
 *     every vCPU's and the VM's state, the dirty log, and writes files;
 *   - the migration sender is a thread the main thread starts when asked
 *     (PUT /migration), long after the main thread entered its sandbox, so
 *     it inherits the main filter. It shares it rather than having one of
 *     its own: its work is the main thread's kind (reading guest RAM and
 *     the dirty log, the final state capture is done by the loop itself)
 *     plus one socket; a separate list would hold nearly the same calls.
 *   - the receiver (--incoming) starts before the VM is built, so it has
 *     no filter of its own: like the rest of set-up it reads what it is
 *     given, record by checked record, and it loads the VM's state itself
 *     (KVM_SET_*), so the main thread's list needs none of that. It ends
 *     when the guest runs (GO).
 *
 * Building a VM from a snapshot happens before the sandbox, like a boot.
 */
#include <linux/kvm.h>
#include <sys/socket.h>

#include "seccomp/sandbox.h"

static const struct sandbox_rule mig_main_rules[] = {
    /* Snapshot create: the vCPUs' state (vcpu_state.c). */
    SB_IOCTL(KVM_GET_REGS),
    SB_IOCTL(KVM_GET_SREGS),
    SB_IOCTL(KVM_GET_FPU),
    SB_IOCTL(KVM_GET_XSAVE),
    SB_IOCTL(KVM_GET_XSAVE2),
    SB_IOCTL(KVM_GET_XCRS),
    SB_IOCTL(KVM_GET_MSRS),
    SB_IOCTL(KVM_GET_MSR_INDEX_LIST),
    SB_IOCTL(KVM_GET_CPUID2),
    SB_IOCTL(KVM_GET_LAPIC),
    SB_IOCTL(KVM_GET_MP_STATE),
    SB_IOCTL(KVM_GET_VCPU_EVENTS),
    SB_IOCTL(KVM_GET_DEBUGREGS),
    SB_IOCTL(KVM_CHECK_EXTENSION),
    /* ... the VM's (vm_state.c), the CPU it runs on (cpu_ident.c) ... */
    SB_IOCTL(KVM_GET_CLOCK),
    SB_IOCTL(KVM_GET_PIT2),
    SB_IOCTL(KVM_GET_IRQCHIP),
    SB_IOCTL(KVM_GET_SUPPORTED_CPUID),
    /* ... the pages changed since the last snapshot, and dirty logging
     * turned on and off for a migration (dirty.c) ... */
    SB_IOCTL(KVM_GET_DIRTY_LOG),
    SB_IOCTL(KVM_SET_USER_MEMORY_REGION),
    /* ... and the files: memory written by range (SEEK_DATA), the state
     * file renamed into place, the memory file's real path kept. */
    SB_ALLOW(ftruncate),
    SB_ALLOW(pwrite64),
    SB_ALLOW(lseek),
    SB_ALLOW(rename),
    SB_ALLOW(getcwd),
    SB_ALLOW(readlink),
    /* PUT /migration starts the sending thread (mig_out.c): its eventfd to
     * the loop, the thread itself (a stack with a guard page; the new
     * thread registers its robust list and rseq area, and exits). */
    SB_ALLOW(eventfd2),
    SB_CLONE_THREAD,
    SB_CLONE3_FALLBACK,
    SB_NO_EXEC(mprotect),
    SB_ALLOW(set_robust_list),
    SB_ALLOW(rseq),
    SB_ALLOW(exit),
    /* ... and, in the ASan/UBSan build, the sanitizer's thread start reads
     * the CPU mask. */
    SB_ALLOW(sched_getaffinity),
    /* The thread's connection: an address, never a name (stream.c), so no
     * resolver runs here; poll for its time limits. */
    SB_SOCKET(AF_INET),
    SB_SOCKET(AF_INET6),
    SB_SOCKET(AF_UNIX),
    SB_ALLOW(connect),
    SB_ALLOW(setsockopt),
    SB_ALLOW(poll),
    /* Ending either side's connection at exit wakes its thread. */
    SB_ALLOW(shutdown),
};

static SANDBOX_RULES(mig_main, SANDBOX_MAIN, "migration", mig_main_rules);
SANDBOX_EXTRA(mig_main);
