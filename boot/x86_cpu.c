#include "x86_cpu.h"

#include <string.h>
#include <sys/ioctl.h>

#include "../log.h"
#include "layout.h"

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0x0000ffffu);
}

struct kvm_segment gdt_to_segment(uint64_t desc, uint16_t selector)
{
	struct kvm_segment s;
	memset(&s, 0, sizeof(s));
	uint32_t limit = (uint32_t)((desc & 0xffff) | ((desc >> 32) & 0xf0000));
	s.base = ((desc >> 16) & 0xffffff) | ((desc >> 32) & 0xff000000);
	s.g = (desc >> 55) & 1;
	s.limit = s.g ? (limit << 12) | 0xfff : limit;
	s.selector = selector;
	s.type = (desc >> 40) & 0xf;
	s.s = (desc >> 44) & 1;
	s.dpl = (desc >> 45) & 3;
	s.present = (desc >> 47) & 1;
	s.avl = (desc >> 52) & 1;
	s.l = (desc >> 53) & 1;
	s.db = (desc >> 54) & 1;
	s.unusable = !s.present;
	return s;
}

void x86_build_gdt(uint64_t gdt[GDT_ENTRIES])
{
	memset(gdt, 0, GDT_ENTRIES * sizeof(gdt[0]));
	gdt[GDT_SEL_CODE32 / 8] = gdt_entry(GDT_FLAGS_CODE32, 0, 0xfffff);
	gdt[GDT_SEL_CODE64 / 8] = gdt_entry(GDT_FLAGS_CODE64, 0, 0xfffff);
	gdt[GDT_SEL_DATA / 8] = gdt_entry(GDT_FLAGS_DATA, 0, 0xfffff);
	gdt[GDT_SEL_TSS / 8] = gdt_entry(GDT_FLAGS_TSS, 0, GDT_TSS_LIMIT);
	gdt[GDT_SEL_TSS / 8 + 1] = 0; /* base bits 63:32 */
}

int x86_write_gdt(struct guest_mem *m)
{
	uint64_t gdt[GDT_ENTRIES];
	x86_build_gdt(gdt);
	return guest_write(m, BOOT_GDT_ADDR, gdt, sizeof(gdt)) ? 0 : -1;
}

int x86_write_page_tables(struct guest_mem *m)
{
	uint64_t *pml4 = guest_ptr(m, BOOT_PML4_ADDR, BOOT_PAGE_SIZE);
	uint64_t *pdpt = guest_ptr(m, BOOT_PDPT_ADDR, BOOT_PAGE_SIZE);
	uint64_t *pd = guest_ptr(m, BOOT_PD_ADDR, BOOT_PD_PAGES * BOOT_PAGE_SIZE);
	if (!pml4 || !pdpt || !pd)
		return -1;
	memset(pml4, 0, BOOT_PAGE_SIZE);
	memset(pdpt, 0, BOOT_PAGE_SIZE);
	pml4[0] = BOOT_PDPT_ADDR | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < BOOT_PD_PAGES; i++)
		pdpt[i] = (BOOT_PD_ADDR + i * BOOT_PAGE_SIZE) | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < BOOT_PD_PAGES * 512; i++)
		pd[i] = (i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
	return 0;
}

void x86_boot_sregs(struct kvm_sregs *s, enum boot_protocol p)
{
	uint64_t gdt[GDT_ENTRIES];
	x86_build_gdt(gdt);
	struct kvm_segment data = gdt_to_segment(gdt[GDT_SEL_DATA / 8], GDT_SEL_DATA);
	uint16_t cs = p == BOOT_PVH ? GDT_SEL_CODE32 : GDT_SEL_CODE64;

	s->cs = gdt_to_segment(gdt[cs / 8], cs);
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = gdt_to_segment(gdt[GDT_SEL_TSS / 8], GDT_SEL_TSS);
	s->gdt.base = BOOT_GDT_ADDR;
	s->gdt.limit = sizeof(gdt) - 1;
	s->idt.base = 0;
	s->idt.limit = 0;
	if (p == BOOT_PVH) {
		s->cr0 = X86_CR0_PE | X86_CR0_ET;
		s->cr3 = 0;
		s->cr4 = 0;
		s->efer = 0;
	} else {
		s->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
		s->cr3 = BOOT_PML4_ADDR;
		s->cr4 = X86_CR4_PAE;
		s->efer = X86_EFER_LME | X86_EFER_LMA;
	}
}

void x86_boot_regs(struct kvm_regs *r, const struct boot_setup *bs)
{
	memset(r, 0, sizeof(*r));
	r->rflags = X86_RFLAGS_RESERVED;
	r->rip = bs->entry;
	r->rsp = BOOT_STACK_TOP;
	if (bs->protocol == BOOT_PVH)
		r->rbx = bs->info_gpa;
	else
		r->rsi = bs->info_gpa;
}

/* KVM_SET_FPU takes fcw but ignores mxcsr (KVM_GET_FPU reports it as 0);
 * a new vCPU's MXCSR is already 0x1f80 in its XSAVE state. It is filled in
 * here anyway so the structure says what the guest starts with. */
void x86_boot_fpu(struct kvm_fpu *f)
{
	memset(f, 0, sizeof(*f));
	f->fcw = FPU_DEFAULT_FCW;
	f->mxcsr = FPU_DEFAULT_MXCSR;
}

int x86_setup_regs(int vcpu_fd, const struct boot_setup *bs)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		vmm_perr("KVM_GET_SREGS");
		return -1;
	}
	x86_boot_sregs(&sregs, bs->protocol);
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
		vmm_perr("KVM_SET_SREGS");
		return -1;
	}
	x86_boot_regs(&regs, bs);
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		vmm_perr("KVM_SET_REGS");
		return -1;
	}
	x86_boot_fpu(&fpu);
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0) {
		vmm_perr("KVM_SET_FPU");
		return -1;
	}
	return 0;
}
