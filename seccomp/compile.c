/*
 * Allow-lists into BPF. libseccomp builds each kind's program once, on the
 * main thread before any other thread exists; the result is kept as a
 * struct sock_fprog, so a thread installs its filter with one seccomp()
 * call and never runs libseccomp (which allocates) itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../log.h"
#include "internal.h"

/* SANDBOX_EXTRA() entries. Weak: with none linked in, both are NULL. */
extern const struct sandbox_rules *const __start_vmm_seccomp[] __attribute__((weak));
extern const struct sandbox_rules *const __stop_vmm_seccomp[] __attribute__((weak));

static const struct sandbox_rules *core_table(enum sandbox_kind kind)
{
	switch (kind) {
	case SANDBOX_MAIN:
		return &sandbox_rules_main;
	case SANDBOX_VCPU:
		return &sandbox_rules_vcpu;
	case SANDBOX_API:
		return &sandbox_rules_api;
	default:
		return NULL;
	}
}

size_t sandbox_tables(enum sandbox_kind kind, bool with_extras, const struct sandbox_rules **out,
		      size_t max)
{
	size_t n = 0;
	const struct sandbox_rules *own = core_table(kind);
	if (!own)
		return 0;
	/* The kind's own first: its hot calls are checked first. */
	if (n < max)
		out[n++] = own;
	if (n < max)
		out[n++] = &sandbox_rules_common;
	if (!with_extras)
		return n;
	if (n < max && sandbox_rules_sanitizer[kind].n)
		out[n++] = &sandbox_rules_sanitizer[kind];
	if (!__start_vmm_seccomp)
		return n;
	for (const struct sandbox_rules *const *e = __start_vmm_seccomp; e < __stop_vmm_seccomp;
	     e++)
		if ((*e)->kind == kind && n < max)
			out[n++] = *e;
	return n;
}

#define MAX_TABLES 32

unsigned sandbox_count(enum sandbox_kind kind, bool with_extras)
{
	const struct sandbox_rules *t[MAX_TABLES];
	size_t nt = sandbox_tables(kind, with_extras, t, MAX_TABLES);
	int seen[1024];
	unsigned count = 0;
	for (size_t i = 0; i < nt; i++) {
		for (size_t j = 0; j < t[i]->n; j++) {
			const struct sandbox_rule *r = &t[i]->rules[j];
			bool dup = r->err != 0; /* refused calls are not allowed ones */
			for (unsigned k = 0; k < count && !dup; k++)
				dup = seen[k] == r->nr;
			if (!dup && count < sizeof(seen) / sizeof(seen[0]))
				seen[count++] = r->nr;
		}
	}
	return count;
}

/* One filter being built. */
struct build {
	scmp_filter_ctx ctx;
	enum sandbox_kind kind;
	int seen[256]; /* system calls already given a priority */
	unsigned nseen;
};

/* The filter checks calls in the order they first appear in the tables:
 * each table puts its hot calls first. */
static void prioritise(struct build *b, int nr)
{
	for (unsigned i = 0; i < b->nseen; i++)
		if (b->seen[i] == nr)
			return;
	if (b->nseen == sizeof(b->seen) / sizeof(b->seen[0]))
		return;
	b->seen[b->nseen++] = nr;
	seccomp_syscall_priority(b->ctx, nr, (uint8_t)(255 - b->nseen));
}

static int add_table(struct build *b, const struct sandbox_rules *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct sandbox_rule *r = &t->rules[i];
		uint32_t action = r->err ? SCMP_ACT_ERRNO((uint32_t)r->err) : SCMP_ACT_ALLOW;
		int rc = seccomp_rule_add_array(b->ctx, action, r->nr, r->nargs, r->arg);
		if (rc == -EEXIST)
			continue; /* the same rule in two tables */
		if (rc < 0) {
			char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r->nr);
			vmm_err(
			    "seccomp: %s rule %zu (%s) for the %s filter refused by libseccomp: %s",
			    t->what, i, name ? name : "?", sandbox_kind_name(b->kind),
			    strerror(-rc));
			free(name);
			return rc;
		}
		prioritise(b, r->nr);
	}
	return 0;
}

/* The program libseccomp generated, copied out of a memfd (libseccomp
 * 2.5 exports to a file descriptor only). */
static int export_prog(scmp_filter_ctx ctx, struct sock_fprog *prog)
{
	int fd = memfd_create("vmm-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = seccomp_export_bpf(ctx, fd);
	off_t size = rc < 0 ? 0 : lseek(fd, 0, SEEK_END);
	struct sock_filter *insns = NULL;
	if (rc == 0 && (size <= 0 || size % sizeof(*insns) || size / sizeof(*insns) > BPF_MAXINSNS))
		rc = -E2BIG;
	if (rc == 0 && !(insns = malloc((size_t)size)))
		rc = -ENOMEM;
	if (rc == 0 && pread(fd, insns, (size_t)size, 0) != size)
		rc = -EIO;
	close(fd);
	if (rc < 0) {
		free(insns);
		return rc;
	}
	prog->filter = insns;
	prog->len = (unsigned short)(size / sizeof(*insns));
	return 0;
}

int sandbox_compile(enum sandbox_kind kind, uint32_t default_action, struct sock_fprog *prog)
{
	const struct sandbox_rules *t[MAX_TABLES];
	size_t nt = sandbox_tables(kind, true, t, MAX_TABLES);
	struct build b = {.ctx = seccomp_init(default_action), .kind = kind};
	if (!b.ctx) {
		vmm_err("seccomp: out of memory building the %s filter", sandbox_kind_name(kind));
		return -ENOMEM;
	}
	/* Another architecture's system calls (int 0x80, x32) are forbidden
	 * calls like any other. */
	int rc = seccomp_attr_set(b.ctx, SCMP_FLTATR_ACT_BADARCH, default_action);
	for (size_t i = 0; rc == 0 && i < nt; i++)
		rc = add_table(&b, t[i]);
	if (rc == 0 && (rc = export_prog(b.ctx, prog)) < 0)
		vmm_err("seccomp: cannot generate the %s filter: %s", sandbox_kind_name(kind),
			strerror(-rc));
	seccomp_release(b.ctx);
	return rc;
}
