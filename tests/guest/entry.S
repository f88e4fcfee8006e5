/*
 * Entry points, CPU start-up and interrupt stubs of the test guest.
 *
 * Image layout (linked at LOAD_ADDR = 0x100000):
 *   +0x000  pvh_start: 32-bit PVH entry (protected mode, paging off,
 *           EBX = hvm_start_info). Switches straight to long mode.
 *   +0x100  kernel_info (bzImage protocol 2.15)
 *   +0x200  entry64: Linux 64-bit boot protocol entry (RSI = zero page);
 *           ELF e_entry and bzImage "protected-mode code + 0x200".
 * Both end in kmain(kind, info) on our own stack, GDT and page tables.
 */
#include "layout.h"

	.section .text.head, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cli
	cld
	mov	%ebx, %esi		/* hvm_start_info */
	mov	$BOOT_PVH, %edi
	jmp	long_mode_32

	/* APs arrive here from the real-mode trampoline, CS = SEL_KCODE32,
	 * our GDT loaded, data segments still real-mode ones. */
	.globl ap_start32
ap_start32:
	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	$BOOT_AP, %edi

long_mode_32:
	lgdt	gdt_desc
	mov	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$boot_pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	mov	$(CR0_PG | CR0_WP | CR0_NE | CR0_ET | CR0_MP | CR0_PE), %eax
	mov	%eax, %cr0
	ljmp	$SEL_KCODE, $long64_from32

	.code64
long64_from32:
	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	cmp	$BOOT_AP, %edi
	je	ap_main
	mov	$kstack_top, %rsp
	jmp	bsp_main

	/* AP: check in with the APIC id, then halt for good. No stack. */
ap_main:
	mov	lapic_base(%rip), %rbx
	mov	0x20(%rbx), %eax	/* APIC ID register */
	shr	$24, %eax
	mov	%eax, %ecx
	shr	$5, %ecx
	and	$31, %eax
	lock btsl %eax, ap_bitmap(,%rcx,4)
	lock incl ap_online(%rip)
1:	cli
	hlt
	jmp	1b

	/* kernel_info, bzImage boot protocol 2.15 */
	.org	KERNEL_INFO_OFFSET
	.globl kernel_info
kernel_info:
	.ascii	"LToP"
	.long	16		/* size */
	.long	16		/* size_total */
	.long	0		/* setup_type_max */

	.org	ENTRY64_OFFSET
	.globl entry64
entry64:
	cli
	cld
	mov	$kstack_top, %rsp
	mov	$CR4_PAE, %eax		/* also clears SMEP/SMAP/PGE/... */
	mov	%rax, %cr4
	mov	$boot_pml4, %eax	/* our map: [0, 4 GiB), user-accessible */
	mov	%rax, %cr3
	lgdt	gdt_desc(%rip)
	pushq	$SEL_KCODE
	pushq	$1f
	lretq
1:	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	mov	$BOOT_LINUX64, %edi
	/* rsi = zero page */
bsp_main:
	call	kmain
2:	cli
	hlt
	jmp	2b

/* ---------------------------------------------------------------- */
	.text
	.code64

/* enter_user(fn, rsp): iretq to CPL3, IOPL=3, IF=0. */
	.globl enter_user
enter_user:
	mov	$(SEL_UDATA | 3), %eax
	mov	%eax, %ds
	mov	%eax, %es
	pushq	$(SEL_UDATA | 3)
	pushq	%rsi
	pushq	$0x3002			/* IOPL=3, reserved bit 1 */
	pushq	$(SEL_UCODE | 3)
	pushq	%rdi
	iretq

/* int wrmsr_safe(uint32_t msr, uint64_t value): 0, or -1 on #GP. */
	.globl wrmsr_safe, wrmsr_safe_insn, wrmsr_safe_fixup
wrmsr_safe:
	mov	%edi, %ecx
	mov	%esi, %eax
	mov	%rsi, %rdx
	shr	$32, %rdx
wrmsr_safe_insn:
	wrmsr
	xor	%eax, %eax
	ret
wrmsr_safe_fixup:
	mov	$-1, %eax
	ret

/* Exception stubs: push (error code or 0), vector, then all GPRs. */
.macro ISR_NOERR n
isr\n:
	pushq	$0
	pushq	$\n
	jmp	isr_common
.endm
.macro ISR_ERR n
isr\n:
	pushq	$\n
	jmp	isr_common
.endm

ISR_NOERR 0
ISR_NOERR 1
ISR_NOERR 2
ISR_NOERR 3
ISR_NOERR 4
ISR_NOERR 5
ISR_NOERR 6
ISR_NOERR 7
ISR_ERR 8
ISR_NOERR 9
ISR_ERR 10
ISR_ERR 11
ISR_ERR 12
ISR_ERR 13
ISR_ERR 14
ISR_NOERR 15
ISR_NOERR 16
ISR_ERR 17
ISR_NOERR 18
ISR_NOERR 19
ISR_NOERR 20
ISR_ERR 21
ISR_NOERR 22
ISR_NOERR 23
ISR_NOERR 24
ISR_NOERR 25
ISR_NOERR 26
ISR_NOERR 27
ISR_NOERR 28
ISR_ERR 29
ISR_ERR 30
ISR_NOERR 31

isr_common:
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, %rdi
	mov	%rsp, %rbx
	and	$-16, %rsp
	call	exception_handler	/* returns only for fixed-up faults */
	mov	%rbx, %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	add	$16, %rsp
	iretq

/* int $0x80 through the DPL3 gate: same frame as an exception. */
	.globl isr_syscall
isr_syscall:
	pushq	$0
	pushq	$128
	jmp	isr_common

/* ---------------------------------------------------------------- */
/* AP real-mode trampoline: copied to a free page below 1 MiB, entered by
 * SIPI at CS = page >> 4, IP = 0. Position independent; everything else
 * lives at fixed addresses in the image. */
	.section .rodata
	.code16
	.globl tramp_start, tramp_end
tramp_start:
	cli
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	(tramp_gdtr - tramp_start)
	mov	%cr0, %eax
	or	$CR0_PE, %eax
	mov	%eax, %cr0
	ljmpl	$SEL_KCODE32, $ap_start32
	.balign 8
tramp_gdtr:
	.word	GDT_ENTRIES * 8 - 1
	.long	gdt
tramp_end:
	.code64

	.section .rodata
	.balign 8
	.globl isr_table
isr_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad isr\n
	.endr

/* ---------------------------------------------------------------- */
	.data
	.balign 16
	.globl gdt
gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* 0x08 kernel code, 64-bit */
	.quad	0x00cf92000000ffff	/* 0x10 kernel data */
	.quad	0x00cf9a000000ffff	/* 0x18 kernel code, 32-bit */
	.quad	0x00cff2000000ffff	/* 0x20 user data */
	.quad	0x00affa000000ffff	/* 0x28 user code, 64-bit */
	.quad	0, 0			/* 0x30 TSS, filled in by kmain */
	.balign 8
	.word	0, 0, 0
gdt_desc:				/* limit at +0, 8-byte base at +2 */
	.word	GDT_ENTRIES * 8 - 1
	.quad	gdt

	.balign 8
	.globl lapic_base, ap_online, ap_bitmap
lapic_base:
	.quad	0xFEE00000
ap_online:
	.long	0
	.balign 8
ap_bitmap:
	.fill	8, 4, 0

/*
 * Static identity map of [0, 4 GiB) with 2 MiB pages, present, writable,
 * user-accessible; the 32 MiB below 4 GiB (IOAPIC, LAPIC) uncached. Built
 * by the assembler, so the PVH stub and the APs need no ring-0 loop.
 * PDPT entries for RAM above 4 GiB are added by kmain.
 */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl boot_pml4, boot_pdpt
boot_pml4:
	.quad	boot_pdpt + 0x7
	.fill	511, 8, 0
boot_pdpt:
	.quad	boot_pd + 0x0000 + 0x7
	.quad	boot_pd + 0x1000 + 0x7
	.quad	boot_pd + 0x2000 + 0x7
	.quad	boot_pd + 0x3000 + 0x7
	.fill	508, 8, 0
boot_pd:
	.set	i, 0
	.rept	2048
	.if	i >= 2032
	.quad	(i << 21) | 0x9f	/* P RW US PWT PCD PS */
	.else
	.quad	(i << 21) | 0x87	/* P RW US PS */
	.endif
	.set	i, i + 1
	.endr

/* Stacks: not zeroed, not in the file. */
	.section .bss.nozero.stack, "aw", @nobits
	.balign 4096
kstack:
	.skip	KSTACK_SIZE
	.globl kstack_top
kstack_top:
	.balign 4096
ustack:
	.skip	USTACK_SIZE
	.globl ustack_top
ustack_top:

	.section .note.GNU-stack, "", @progbits
