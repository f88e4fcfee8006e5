/*
 * The sandbox: once set-up is over, every thread of the VMM runs under a
 * seccomp filter made for its kind of work, with no capabilities and no
 * way to gain privileges, optionally chrooted and as another user.
 *
 *   kind          entered by                             when
 *   SANDBOX_API   the API thread (api/server.c)          before its first accept()
 *   SANDBOX_VCPU  each vCPU thread (vcpu.c)              before its first KVM_RUN
 *   SANDBOX_MAIN  the main thread, the event loop        once the VM is built, before
 *                 (machine.c, vm_boot)                   any vCPU is let into the guest
 *
 * A filter is per thread, and a thread created later inherits its
 * creator's (filters stack: a call must pass both). So each thread installs
 * its own, the main thread last; a thread the main thread starts after that
 * (a module's worker) runs under the main list. The allow-lists are tables: filter_main.c, filter_vcpu.c,
 * filter_api.c, plus filter_common.c (every kind) and filter_sanitizer.c
 * (ASan/UBSan builds only). README.md in this directory says how to add a
 * system call; a compile-time module adds its own with SANDBOX_EXTRA().
 */
#ifndef VMM_SECCOMP_SANDBOX_H
#define VMM_SECCOMP_SANDBOX_H

#include <errno.h>
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "../vmm.h"

enum sandbox_kind { SANDBOX_MAIN, SANDBOX_VCPU, SANDBOX_API, SANDBOX_NKINDS };

/* Firecracker's published allow-list sizes (x86_64): vmm, vcpu, api. The
 * unit tests hold our lists below them. */
#define FIRECRACKER_SYSCALLS_MAIN 50
#define FIRECRACKER_SYSCALLS_VCPU 27
#define FIRECRACKER_SYSCALLS_API 31

/* ---- allow-list entries ---- */

#define SANDBOX_MAX_ARGS 2

/* One entry of an allow-list: the system call `nr`, when every argument
 * comparison holds. Several entries for one call are alternatives. */
struct sandbox_rule {
	int nr;	 /* SCMP_SYS(name) */
	int err; /* 0: allowed; else refused with this errno, not run (see clone3) */
	unsigned nargs;
	struct scmp_arg_cmp arg[SANDBOX_MAX_ARGS];
};

/* Allowed, whatever its arguments. */
#define SB_ALLOW(name)                                                                             \
	{                                                                                          \
		.nr = SCMP_SYS(name)                                                               \
	}
/* Refused with errno e instead of killing: for calls libc tries first and
 * falls back from (clone3 -> clone). */
#define SB_ERRNO(name, e)                                                                          \
	{                                                                                          \
		.nr = SCMP_SYS(name), .err = (e)                                                   \
	}
/* Allowed when the argument comparisons hold (SB_EQ, SB_MASKED). */
#define SB_IF(name, ...)                                                                           \
	{                                                                                          \
		.nr = SCMP_SYS(name),                                                              \
		.nargs =                                                                           \
		    sizeof((struct scmp_arg_cmp[]){__VA_ARGS__}) / sizeof(struct scmp_arg_cmp),    \
		.arg = { __VA_ARGS__ }                                                             \
	}
/* Argument i equals v. */
#define SB_EQ(i, v)                                                                                \
	{                                                                                          \
		.arg = (i), .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)(v)                        \
	}
/* Argument i differs from v. */
#define SB_NE(i, v)                                                                                \
	{                                                                                          \
		.arg = (i), .op = SCMP_CMP_NE, .datum_a = (scmp_datum_t)(v)                        \
	}
/* Argument i, masked, equals v. */
#define SB_MASKED(i, mask, v)                                                                      \
	{                                                                                          \
		.arg = (i), .op = SCMP_CMP_MASKED_EQ, .datum_a = (scmp_datum_t)(mask),             \
		.datum_b = (scmp_datum_t)(v)                                                       \
	}

/* One ioctl request number. The kernel reads the request as 32 bits, so
 * only those are compared (a sign-extended request still matches, and
 * nothing else can). */
#define SB_IOCTL(req) SB_IF(ioctl, SB_MASKED(1, 0xffffffffu, (req)))
/* mmap/mprotect without PROT_EXEC (argument 2): no new executable memory. */
#define SB_NO_EXEC(name) SB_IF(name, SB_MASKED(2, PROT_EXEC, 0))
/* socket() of one address family (argument 0), for threads that open
 * sockets after set-up (none in the core; a migration module would). */
#define SB_SOCKET(family) SB_IF(socket, SB_EQ(0, (family)))
/* Creating a thread: clone with exactly glibc's pthread_create flags (no
 * new process, no new namespace), and clone3, whose flags sit in memory a
 * filter cannot read, refused with ENOSYS so glibc falls back to clone. */
#define SANDBOX_THREAD_CLONE_FLAGS                                                                 \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |        \
	 CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)
#define SB_CLONE_THREAD SB_IF(clone, SB_EQ(0, SANDBOX_THREAD_CLONE_FLAGS))
#define SB_CLONE3_FALLBACK SB_ERRNO(clone3, ENOSYS)

/* One allow-list: rules for one kind of thread. */
struct sandbox_rules {
	enum sandbox_kind kind;
	const char *what; /* "core", "sanitizer", a module's name: for messages */
	const struct sandbox_rule *rules;
	size_t n;
};

#define SANDBOX_RULES(var, k, name, table)                                                         \
	const struct sandbox_rules var = {.kind = (k),                                             \
					  .what = (name),                                          \
					  .rules = (table),                                        \
					  .n = sizeof(table) / sizeof((table)[0])}

/*
 * Extra allowances from outside seccomp/ (a compile-time module, a device
 * with its own needs): in the module's source,
 *
 *	static const struct sandbox_rule mig_rules[] = { SB_SOCKET(AF_INET), ... };
 *	static SANDBOX_RULES(mig_main, SANDBOX_MAIN, "migration", mig_rules);
 *	SANDBOX_EXTRA(mig_main);
 *
 * Every filter built afterwards (sandbox_init) includes them: the linker
 * gathers them in the "vmm_seccomp" section, so a build without the module
 * carries none of its allowances.
 */
#define SANDBOX_EXTRA(rules_var)                                                                   \
	static const struct sandbox_rules *const sandbox_extra_##rules_var                         \
	    __attribute__((used, section("vmm_seccomp"), aligned(sizeof(void *)))) = &(rules_var)

/* The core tables (filter_*.c); common goes into every kind's filter. */
extern const struct sandbox_rules sandbox_rules_common;
extern const struct sandbox_rules sandbox_rules_main, sandbox_rules_vcpu, sandbox_rules_api;
/* What the ASan/UBSan runtime needs on top, per kind (sanitizer builds
 * only; empty otherwise). */
extern const struct sandbox_rules sandbox_rules_sanitizer[SANDBOX_NKINDS];

/* ---- the sandbox ---- */

struct sandbox {
	enum sandbox_mode mode;
	struct sock_fprog prog[SANDBOX_NKINDS]; /* compiled filters; empty when off */
	/* The jail (--chroot, --uid/--gid), from the configuration. */
	const char *chroot; /* NULL: none */
	bool set_ids;
	uid_t uid;
	gid_t gid;
	/* VMM_TEST_SECCOMP_TRIP=KIND: that kind of thread makes a forbidden
	 * call once sandboxed, for the end-to-end tests; -1: none. */
	int trip;
};

/* Compile each kind's filter for cfg->seccomp, prepare the SIGSYS report
 * and set no_new_privs for the process. Before any thread is started.
 * Returns 0 or a VMM exit status, with a message printed. */
int sandbox_init(struct sandbox *sb, const struct vm_config *cfg);
void sandbox_destroy(struct sandbox *sb);

/* The calling thread becomes a sandboxed `kind` thread, for good: it
 * drops its capabilities (bounding set included), takes the jail's ids,
 * and installs its filter. SANDBOX_MAIN first applies --chroot, which
 * holds for the whole process. sb NULL (unit tests): nothing happens.
 * Returns 0 or a VMM exit status, with a message printed. */
int sandbox_enter(const struct sandbox *sb, enum sandbox_kind kind);

/* "main", "vcpu", "api". */
const char *sandbox_kind_name(enum sandbox_kind kind);

/* Distinct system calls a kind's filter allows: the core lists (common
 * and the kind's own), without sanitizer allowances or modules' extras
 * when `with_extras` is false. For the README's counts and their test. */
unsigned sandbox_count(enum sandbox_kind kind, bool with_extras);

/* Every rules table of kind's filter, in order: the kind's own, common,
 * then (with_extras) sanitizer and SANDBOX_EXTRA() tables. Returns how
 * many it put in out (at most max). For the counts and their test. */
size_t sandbox_tables(enum sandbox_kind kind, bool with_extras, const struct sandbox_rules **out,
		      size_t max);

/* ---- command line (options.c) ---- */

/* --seccomp, --chroot, --uid, --gid into cfg. Returns false with a message
 * naming the flag and the value printed on err. */
bool sandbox_parse_option(const char *flag, const char *arg, struct vm_config *cfg, FILE *err);
/* Rules that span flags (--uid needs --gid). false with a message. */
bool sandbox_check_options(const struct vm_config *cfg, FILE *err);

#endif
