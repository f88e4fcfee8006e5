/* vCPUs: one host thread each, running KVM_RUN and dispatching exits. */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include "vmm.h"

/* Signal used to knock a vCPU thread out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

/* Create vCPU `index` (fd and kvm_run mapping). Returns 0 or an enum
 * vmm_exit status with a message printed. */
int vcpu_create(struct vm *vm, unsigned index);
/* Install the kick signal handler; call once before vcpu_start(). */
int vcpu_install_kick_handler(void);
/* Start the vCPU's thread. It installs its seccomp filter, then waits for
 * vcpu_release_all() before its first KVM_RUN. */
int vcpu_start(struct vcpu *v);
/* Let the started vCPUs into the guest: once every thread is sandboxed. */
void vcpu_release_all(struct vm *vm);
/* Pausing (PATCH /vm). init/destroy: the vm->pause lock and condition. */
void vcpu_pause_init(struct vm *vm);
void vcpu_pause_destroy(struct vm *vm);
/* Kick every vCPU out of KVM_RUN and park it; each calls KVM_KVMCLOCK_CTRL
 * first, so the guest's clock knows it was stopped. Returns 0 once all are
 * parked, or -1 (vCPUs running again) if one did not stop within
 * VCPU_PAUSE_TIMEOUT_S or the VM is stopping. */
#define VCPU_PAUSE_TIMEOUT_S 5
int vcpu_pause_all(struct vm *vm);
void vcpu_resume_all(struct vm *vm);
bool vcpu_paused(struct vm *vm);
/* Hold the VM paused for work that needs it still (a migration's final
 * copy): pause it if it runs; until released, resuming is refused with
 * `why`. Returns 0 and says whether it was running (release() resumes it
 * only then), or -1 as vcpu_pause_all(). */
int vcpu_pause_hold(struct vm *vm, const char *why, bool *was_running);
void vcpu_pause_release(struct vm *vm, bool resume);
/* Why resuming is refused now, or NULL. */
const char *vcpu_pause_held(struct vm *vm);

/* Stop every started vCPU thread and wait for it. */
void vcpu_stop_all(struct vm *vm);
void vcpu_destroy(struct vcpu *v);

/* Handle one KVM exit; returns false when the vCPU must stop. Exposed for
 * unit tests, which feed it crafted kvm_run structures. */
bool vcpu_handle_exit(struct vcpu *v);

#endif
