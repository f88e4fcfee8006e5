/*
 * vmm test guest: shared declarations.
 *
 * Freestanding, single address space, identity-mapped. Ring 0 only sets the
 * machine up (boot info copy, page tables, GDT/IDT/TSS) and then drops to
 * CPL3 with IOPL=3, where every test runs. A few things that need ring 0
 * later go through `int $0x80` (see sys_*()).
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

/* ---- boot information, copied out of the VMM's structures first ---- */

#define MAX_MEM_RANGES 128
#define CMDLINE_MAX 4096

enum e820_type { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3, E820_NVS = 4, E820_UNUSABLE = 5 };

struct mem_range {
	uint64_t start;
	uint64_t end; /* exclusive */
	uint32_t type;
};

struct bootinfo {
	uint32_t kind;	    /* BOOT_LINUX64 / BOOT_PVH */
	uint32_t bad;	    /* nonzero: the boot info was unusable (why in note) */
	const char *note;   /* static string, why `bad` */
	uint64_t info_addr; /* where the zero page / start_info was */
	uint32_t pvh_version;
	uint32_t nmem;
	uint32_t mem_truncated; /* more entries than MAX_MEM_RANGES */
	struct mem_range mem[MAX_MEM_RANGES];
	char cmdline[CMDLINE_MAX];
};

extern struct bootinfo boot;
/* Everything below this physical address is identity-mapped (>= 4 GiB). */
extern uint64_t mapped_limit;

/* Linker symbols. */
extern char _image_start[], _end[], _bss_start[], _bss_end[];

/* ---- entry.S ---- */
extern uint64_t gdt[];
extern volatile uint64_t lapic_base;   /* read by the APs */
extern volatile uint32_t ap_online;    /* APs increment on check-in */
extern volatile uint32_t ap_bitmap[8]; /* bit per APIC id */
extern char tramp_start[], tramp_end[];
extern char ustack_top[];
extern char isr_syscall[];
extern uint64_t isr_table[32];
extern char wrmsr_safe_insn[], wrmsr_safe_fixup[];
int wrmsr_safe(uint32_t msr, uint64_t value);
__attribute__((noreturn)) void enter_user(void (*fn)(void), uint64_t rsp);

/* ---- port I/O and friends ---- */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}
static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}
static inline void barrier(void)
{
	__asm__ volatile("" : : : "memory");
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}
/* A pointer to a physical address (identity map). The asm hides the
 * constant from the compiler so that low addresses (even 0) are not
 * treated as null or out-of-bounds. */
static inline void *phys(uint64_t addr)
{
	void *p = (void *)(uintptr_t)addr;
	__asm__("" : "+r"(p));
	return p;
}
static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)phys(addr);
}
static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)phys(addr) = v;
}

/* ---- syscalls: int $0x80 (see exception_handler) ---- */
enum { SYS_WRMSR = 1, SYS_HALT = 2, SYS_WRITE = 3, SYS_OUTB = 4, SYS_INB = 5 };
static inline long syscall2(long nr, long a1, long a2)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2) : "memory");
	return ret;
}
static inline unsigned cpl(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}
/* Port I/O from any ring. IOPL=3 is requested for CPL3, but PVM-backed KVM
 * runs guest user mode with IOPL 0, so CPL3 goes through a syscall. */
static inline void pio_out8(uint16_t port, uint8_t v)
{
	if (cpl())
		syscall2(SYS_OUTB, port, v);
	else
		outb(port, v);
}
static inline uint8_t pio_in8(uint16_t port)
{
	return cpl() ? (uint8_t)syscall2(SYS_INB, port, 0) : inb(port);
}
static inline int sys_wrmsr(uint32_t msr, uint64_t v)
{
	return (int)syscall2(SYS_WRMSR, msr, (long)v);
}
__attribute__((noreturn)) static inline void sys_halt(void)
{
	syscall2(SYS_HALT, 0, 0);
	for (;;)
		;
}

/* ---- lib.c ---- */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
bool parse_u64(const char *s, uint64_t *out);
const char *parse_u64_prefix(const char *s, uint64_t *out);

void serial_write(const char *s, size_t n); /* any ring */
void serial_write_ring0(const char *s, size_t n);
int vformat(char *buf, size_t size, const char *fmt, va_list ap);
int snformat(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Exit paths (see README): pass = i8042 reset (or debug-exit 0 with
 * guest.exit=debug); fail = debug-exit `code`, then i8042, then halt. */
enum { EXITV_FAIL = 1, EXITV_EXCEPTION = 2, EXITV_BOOTINFO = 3 };
__attribute__((noreturn)) void guest_exit(bool pass, unsigned code);
extern bool exit_via_debug;
extern const char *current_test;

/* ---- time (kvmclock.c) ---- */
int kvmclock_init(void); /* 0, or -1 (MSR refused / clock never updated) */
uint64_t kvmclock_ns(void);
/* Best available monotonic ns: kvmclock if registered, else scaled TSC. */
void time_init(void);
uint64_t time_ns(void);
const char *time_source(void);
void udelay(uint64_t us);

/* ---- tests ---- */
struct options {
	const char *test;
	uint64_t expect_mem_mib; /* 0: not given */
	uint64_t sleep_ms;
	/* virtio-blk tests (blk.h); 0 / NULL: not given */
	uint64_t blk_index;   /* which virtio-blk device */
	uint64_t blk_sectors; /* expected capacity */
	uint64_t blk_n;       /* blk_durable: blocks to write */
	const char *blk_serial;
	const char *blk_bench; /* randread|randwrite|seqread|seqwrite */
	uint64_t blk_qd, blk_bs, blk_secs;
	/* memhold (memhold.c) */
	uint64_t fill_mib, fill_seed;
};
extern struct options opt;

/* Each returns true on pass; on failure writes a reason into `why`. */
typedef bool (*test_fn)(char *why, size_t n);
bool test_smp(char *why, size_t n);
bool test_kvmclock(char *why, size_t n);
bool test_counter(char *why, size_t n);
bool test_memtest(char *why, size_t n);
bool test_memhold(char *why, size_t n);
/* migtest (migtest.c): guest.mig_* and guest.dirty_mib_s */
bool test_migtest(char *why, size_t n);
bool parse_migtest_option(const char *key, const char *val);

#endif
