/*
 * Ring 0 of the test guest. Everything here is emulated one instruction at
 * a time on some hosts, so it does as little as possible: copy the boot
 * info, map RAM above 4 GiB, GDT/TSS/IDT, drop to CPL3. Compiled with
 * -mgeneral-regs-only like the rest of the guest.
 */
#include "guest.h"

/* Filled before .bss is cleared, so they must not live in .bss. */
struct bootinfo boot __attribute__((section(".data.boot")));
uint64_t mapped_limit __attribute__((section(".data.boot"))) = 4ULL << 30;

/* Page directories for RAM above 4 GiB: every entry used is written. */
static uint64_t high_pd[MAX_PHYS_GIB - 4][512]
    __attribute__((aligned(4096), section(".bss.nozero.pt")));

extern uint64_t boot_pdpt[512];

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t reserved;
};

static struct tss tss __attribute__((aligned(64)));
/* In .data, not .bss: zeroing it would cost ring-0 time; unused gates stay
 * not-present (a stray vector then shows up as #NP with its number). */
static struct idt_gate idt[256] __attribute__((aligned(4096), section(".data.idt")));
extern char kstack_top[];
void user_main(void);

/* ---- boot info ---- */

static void copy_cmdline(uint64_t pa)
{
	size_t i = 0;
	if (pa && pa < (4ULL << 30)) {
		const volatile char *s = phys(pa);
		for (; i < CMDLINE_MAX - 1 && s[i]; i++)
			boot.cmdline[i] = s[i];
	}
	boot.cmdline[i] = 0;
}

static void add_range(uint64_t start, uint64_t size, uint32_t type)
{
	if (boot.nmem >= MAX_MEM_RANGES) {
		boot.mem_truncated = 1;
		return;
	}
	struct mem_range *r = &boot.mem[boot.nmem++];
	r->start = start;
	r->end = start + size;
	r->type = type;
}

static inline uint32_t rd32(uint64_t a)
{
	return *(volatile uint32_t *)phys(a);
}
static inline uint64_t rd64(uint64_t a)
{
	return *(volatile uint64_t *)phys(a);
}

static void copy_bootinfo(uint32_t kind, uint64_t info)
{
	boot.kind = kind;
	boot.info_addr = info;
	if (info == 0 || info >= (4ULL << 30) - 4096) {
		boot.bad = 1;
		boot.note = "boot info pointer outside the first 4 GiB";
		return;
	}
	if (kind == BOOT_LINUX64) {
		/* struct boot_params ("zero page") */
		uint64_t cmd = rd32(info + 0x228) | ((uint64_t)rd32(info + 0x0c8) << 32);
		copy_cmdline(cmd);
		unsigned n = *(volatile uint8_t *)phys(info + 0x1e8);
		if (n > 128) /* E820_MAX_ENTRIES_ZEROPAGE */
			n = 128;
		/* packed {u64 addr, u64 size, u32 type} */
		for (unsigned i = 0; i < n; i++) {
			uint64_t e = info + 0x2d0 + 20 * i;
			add_range(rd64(e), rd64(e + 8), rd32(e + 16));
		}
	} else {
		/* struct hvm_start_info */
		if (rd32(info) != 0x336ec578) {
			boot.bad = 1;
			boot.note = "hvm_start_info magic mismatch";
			return;
		}
		boot.pvh_version = rd32(info + 4);
		copy_cmdline(rd64(info + 24));
		if (boot.pvh_version >= 1) {
			uint64_t map = rd64(info + 40);
			unsigned n = rd32(info + 48);
			/* {u64 addr, u64 size, u32 type, u32 reserved} */
			if (map && map < (4ULL << 30))
				for (unsigned i = 0; i < n; i++) {
					uint64_t e = map + 24 * i;
					add_range(rd64(e), rd64(e + 8), rd32(e + 16));
				}
		}
	}
}

/* ---- page tables: RAM above 4 GiB, 2 MiB pages, user-accessible ---- */

static void map_high_ram(void)
{
	uint64_t top = 4ULL << 30;
	for (unsigned i = 0; i < boot.nmem; i++)
		if (boot.mem[i].type == E820_RAM && boot.mem[i].end > top)
			top = boot.mem[i].end;
	uint64_t ngib = (top + (1ULL << 30) - 1) >> 30;
	if (ngib > MAX_PHYS_GIB)
		ngib = MAX_PHYS_GIB;
	for (uint64_t g = 4; g < ngib; g++) {
		uint64_t *pd = high_pd[g - 4];
		uint64_t base = (g << 30) | 0x87;
		for (unsigned i = 0; i < 512; i++)
			pd[i] = base + ((uint64_t)i << 21);
		boot_pdpt[g] = (uint64_t)(uintptr_t)pd | 0x7;
	}
	mapped_limit = ngib << 30;
}

/* ---- GDT / TSS / IDT ---- */

static void set_gate(unsigned vec, void *handler, uint8_t type)
{
	uint64_t a = (uint64_t)(uintptr_t)handler;
	idt[vec].off_lo = (uint16_t)a;
	idt[vec].sel = SEL_KCODE;
	idt[vec].ist = 0;
	idt[vec].type = type;
	idt[vec].off_mid = (uint16_t)(a >> 16);
	idt[vec].off_hi = (uint32_t)(a >> 32);
	idt[vec].reserved = 0;
}

static void setup_cpu(void)
{
	uint64_t t = (uint64_t)(uintptr_t)&tss;
	tss.rsp[0] = (uint64_t)(uintptr_t)kstack_top;
	tss.iomap_base = sizeof(tss); /* no I/O bitmap: IOPL=3 decides */
	gdt[SEL_TSS / 8] = (sizeof(tss) - 1) | ((t & 0xffffff) << 16) | (0x89ULL << 40) |
			   (((t >> 24) & 0xff) << 56);
	gdt[SEL_TSS / 8 + 1] = t >> 32;
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS));

	for (unsigned v = 0; v < 32; v++)
		set_gate(v, (void *)(uintptr_t)isr_table[v], 0x8E);
	set_gate(0x80, (void *)(uintptr_t)isr_syscall, 0xEE); /* DPL 3 */
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void kmain(uint32_t kind, uint64_t info)
{
	copy_bootinfo(kind, info);
	memset(_bss_start, 0, (size_t)(_bss_end - _bss_start));
	map_high_ram();
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax", "memory");
	setup_cpu();
	enter_user(user_main, (uint64_t)(uintptr_t)ustack_top - 8);
}

/* ---- traps ---- */

struct frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vec, err;
	uint64_t rip, cs, rflags, rsp, ss;
};

static void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

long syscall_handler(long nr, long a1, long a2);

void exception_handler(struct frame *f)
{
	if (f->vec == 13 && f->rip == (uint64_t)(uintptr_t)wrmsr_safe_insn) {
		f->rip = (uint64_t)(uintptr_t)wrmsr_safe_fixup;
		return;
	}
	/* `int $0x80` from CPL3. With VT-x it reaches the DPL3 gate directly;
	 * PVM-backed KVM raises #UD (or #GP) on it instead, so do the call
	 * here and step over the instruction. */
	if (f->vec == 128 || ((f->vec == 6 || f->vec == 13) && (f->cs & 3) &&
			      *(const volatile uint16_t *)phys(f->rip) == 0x80cd)) {
		f->rax = (uint64_t)syscall_handler((long)f->rax, (long)f->rdi, (long)f->rsi);
		if (f->vec != 128)
			f->rip += 2;
		return;
	}
	uint64_t cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	print("EXCEPTION %u rip=0x%llx err=0x%llx cr2=0x%llx cs=0x%llx rsp=0x%llx rflags=0x%llx\n",
	      (unsigned)f->vec, (unsigned long long)f->rip, (unsigned long long)f->err,
	      (unsigned long long)cr2, (unsigned long long)f->cs, (unsigned long long)f->rsp,
	      (unsigned long long)f->rflags);
	print("TEST %s FAIL: exception %u\n", current_test ? current_test : "?", (unsigned)f->vec);
	outb(0xf4, EXITV_EXCEPTION);
	outb(0x64, 0xfe);
	halt_forever();
}

long syscall_handler(long nr, long a1, long a2)
{
	switch (nr) {
	case SYS_WRMSR:
		return wrmsr_safe((uint32_t)a1, (uint64_t)a2);
	case SYS_HALT:
		halt_forever();
		break;
	case SYS_WRITE:
		serial_write_ring0((const char *)(uintptr_t)a1, (size_t)a2);
		return 0;
	case SYS_OUTB:
		outb((uint16_t)a1, (uint8_t)a2);
		return 0;
	case SYS_INB:
		return inb((uint16_t)a1);
	}
	return -1;
}
