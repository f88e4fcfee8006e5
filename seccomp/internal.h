/* What the files of seccomp/ share, and nothing outside uses. */
#ifndef VMM_SECCOMP_INTERNAL_H
#define VMM_SECCOMP_INTERNAL_H

#include "sandbox.h"

/* Compile kind's tables into prog for a default action (compile.c).
 * Returns 0 or -errno, with a message printed. */
int sandbox_compile(enum sandbox_kind kind, uint32_t default_action, struct sock_fprog *prog);

/* The SIGSYS report (sigsys.c): the number->name table and the handler,
 * for kill mode; the calling thread's kind, for its report. */
int sandbox_sigsys_init(void);
void sandbox_sigsys_set_kind(enum sandbox_kind kind);

/* privs.c: --chroot (the whole process), then the calling thread's
 * capabilities, ids and no_new_privs. 0 or -1 with a message printed. */
int sandbox_apply_chroot(const char *dir);
int sandbox_drop_privileges(const struct sandbox *sb);

#endif
