#include "elf.h"

#include <elf.h>
#include <stdio.h>
#include <string.h>

#define XEN_NOTE_NAME "Xen" /* namesz 4 with the NUL */

bool elf_detect(const uint8_t *buf, size_t len)
{
	return len >= SELFMAG && memcmp(buf, ELFMAG, SELFMAG) == 0;
}

static int check_ehdr(const Elf64_Ehdr *eh, size_t len, char *err, size_t errlen)
{
	if (eh->e_ident[EI_CLASS] != ELFCLASS64) {
		snprintf(err, errlen, "ELF class %u is not ELF64: not an ELF64 x86-64 image",
			 eh->e_ident[EI_CLASS]);
		return -1;
	}
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB) {
		snprintf(err, errlen, "ELF image is not little-endian: not an ELF64 x86-64 image");
		return -1;
	}
	if (eh->e_machine != EM_X86_64) {
		snprintf(err, errlen, "ELF machine %u is not x86-64: not an ELF64 x86-64 image",
			 eh->e_machine);
		return -1;
	}
	if (eh->e_type != ET_EXEC) {
		snprintf(err, errlen, "ELF type %u is not an executable (ET_EXEC)", eh->e_type);
		return -1;
	}
	if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM) {
		snprintf(err, errlen, "ELF image has no usable program headers (e_phnum %u)",
			 eh->e_phnum);
		return -1;
	}
	if (eh->e_phentsize < sizeof(Elf64_Phdr)) {
		snprintf(err, errlen, "ELF program header size %u is too small", eh->e_phentsize);
		return -1;
	}
	uint64_t table = (uint64_t)eh->e_phnum * eh->e_phentsize;
	if (eh->e_phoff > len || table > len - eh->e_phoff) {
		snprintf(err, errlen,
			 "ELF program header table (offset 0x%llx, %u entries) lies beyond the end "
			 "of the file (truncated?)",
			 (unsigned long long)eh->e_phoff, eh->e_phnum);
		return -1;
	}
	return 0;
}

/* The segment's file bytes lie inside the file, without overflow. */
static bool in_file(const Elf64_Phdr *ph, size_t len)
{
	return ph->p_offset <= len && ph->p_filesz <= len - ph->p_offset;
}

static int add_load(const Elf64_Phdr *ph, unsigned idx, size_t len, struct elf_info *out, char *err,
		    size_t errlen)
{
	uint64_t end;
	if (ph->p_filesz > ph->p_memsz) {
		snprintf(err, errlen, "ELF segment %u: file size 0x%llx exceeds memory size 0x%llx",
			 idx, (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
		return -1;
	}
	if (!in_file(ph, len)) {
		snprintf(err, errlen,
			 "ELF segment %u: file bytes [0x%llx, +0x%llx) lie beyond the end of the "
			 "file (truncated?)",
			 idx, (unsigned long long)ph->p_offset, (unsigned long long)ph->p_filesz);
		return -1;
	}
	if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &end)) {
		snprintf(err, errlen, "ELF segment %u: address 0x%llx + size 0x%llx overflows", idx,
			 (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
		return -1;
	}
	if (ph->p_memsz == 0)
		return 0;
	if (out->nload == ELF_MAX_LOAD) {
		snprintf(err, errlen, "ELF image has more than %d loadable segments", ELF_MAX_LOAD);
		return -1;
	}
	struct elf_segment *s = &out->load[out->nload++];
	s->paddr = ph->p_paddr;
	s->vaddr = ph->p_vaddr;
	s->offset = ph->p_offset;
	s->filesz = ph->p_filesz;
	s->memsz = ph->p_memsz;
	if (out->nload == 1 || s->paddr < out->start)
		out->start = s->paddr;
	if (end > out->end)
		out->end = end;
	return 0;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static int xen_entry(const uint8_t *desc, uint32_t descsz, struct elf_info *out, char *err,
		     size_t errlen)
{
	uint64_t v;
	if (descsz == 4) {
		v = rd32(desc);
	} else if (descsz == 8) {
		memcpy(&v, desc, sizeof(v));
	} else {
		snprintf(err, errlen, "malformed Xen PHYS32_ENTRY note: %u-byte value", descsz);
		return -1;
	}
	if (v > UINT32_MAX) {
		snprintf(err, errlen, "Xen PHYS32_ENTRY 0x%llx is above 4 GiB",
			 (unsigned long long)v);
		return -1;
	}
	out->pvh = true;
	out->pvh_entry = (uint32_t)v;
	return 0;
}

int elf_parse_notes(const uint8_t *note, uint64_t size, uint64_t align, struct elf_info *out,
		    char *err, size_t errlen)
{
	uint64_t off = 0;
	while (size - off >= 12) {
		uint32_t namesz = rd32(note + off), descsz = rd32(note + off + 4);
		uint32_t type = rd32(note + off + 8);
		uint64_t name_off = off + 12;
		/* 64-bit sums of 32-bit sizes: no overflow possible. */
		uint64_t desc_off = name_off + align_up(namesz, align);
		if (desc_off > size || descsz > size - desc_off) {
			snprintf(err, errlen,
				 "malformed ELF note at offset 0x%llx: name size %u, descriptor "
				 "size %u overrun the note segment",
				 (unsigned long long)off, namesz, descsz);
			return -1;
		}
		if (namesz == sizeof(XEN_NOTE_NAME) &&
		    memcmp(note + name_off, XEN_NOTE_NAME, sizeof(XEN_NOTE_NAME)) == 0 &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY &&
		    xen_entry(note + desc_off, descsz, out, err, errlen) < 0)
			return -1;
		uint64_t next = desc_off + align_up(descsz, align);
		off = next < size ? next : size;
	}
	return 0;
}

static int add_note(const uint8_t *buf, const Elf64_Phdr *ph, unsigned idx, size_t len,
		    struct elf_info *out, char *err, size_t errlen)
{
	if (!in_file(ph, len)) {
		snprintf(err, errlen, "ELF note segment %u lies beyond the end of the file", idx);
		return -1;
	}
	uint64_t align = ph->p_align == 8 ? 8 : 4;
	return elf_parse_notes(buf + ph->p_offset, ph->p_filesz, align, out, err, errlen);
}

/* e_entry as a physical address: inside a segment's physical range, or
 * translated from its virtual range. */
static int find_entry(uint64_t e_entry, struct elf_info *out, char *err, size_t errlen)
{
	for (unsigned i = 0; i < out->nload; i++) {
		const struct elf_segment *s = &out->load[i];
		if (e_entry >= s->paddr && e_entry - s->paddr < s->memsz) {
			out->entry = e_entry;
			return 0;
		}
	}
	for (unsigned i = 0; i < out->nload; i++) {
		const struct elf_segment *s = &out->load[i];
		if (e_entry >= s->vaddr && e_entry - s->vaddr < s->memsz) {
			out->entry = e_entry - s->vaddr + s->paddr;
			return 0;
		}
	}
	snprintf(err, errlen, "ELF entry point 0x%llx is outside every loadable segment",
		 (unsigned long long)e_entry);
	return -1;
}

static int parse_phdrs(const uint8_t *buf, size_t len, const Elf64_Ehdr *eh, struct elf_info *out,
		       char *err, size_t errlen)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, buf + eh->e_phoff + (uint64_t)i * eh->e_phentsize, sizeof(ph));
		int rc = 0;
		if (ph.p_type == PT_LOAD)
			rc = add_load(&ph, i, len, out, err, errlen);
		else if (ph.p_type == PT_NOTE)
			rc = add_note(buf, &ph, i, len, out, err, errlen);
		if (rc < 0)
			return -1;
	}
	if (out->nload == 0) {
		snprintf(err, errlen, "ELF image has no loadable segments");
		return -1;
	}
	return 0;
}

int elf_parse(const uint8_t *buf, size_t len, struct elf_info *out, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	memset(out, 0, sizeof(*out));
	if (!elf_detect(buf, len)) {
		snprintf(err, errlen, "no ELF magic: not an ELF64 x86-64 image");
		return -1;
	}
	if (len < sizeof(eh)) {
		snprintf(err, errlen, "truncated ELF header (%zu bytes)", len);
		return -1;
	}
	memcpy(&eh, buf, sizeof(eh));
	if (check_ehdr(&eh, len, err, errlen) < 0 ||
	    parse_phdrs(buf, len, &eh, out, err, errlen) < 0)
		return -1;
	if (out->pvh)
		return 0; /* e_entry is not used for PVH */
	return find_entry(eh.e_entry, out, err, errlen);
}

int elf_load(struct guest_mem *m, const uint8_t *buf, const struct elf_info *info, char *err,
	     size_t errlen)
{
	for (unsigned i = 0; i < info->nload; i++) {
		const struct elf_segment *s = &info->load[i];
		if (!guest_ptr(m, s->paddr, s->memsz)) {
			snprintf(err, errlen,
				 "ELF segment [0x%llx, 0x%llx) lies outside guest RAM (%llu MiB)",
				 (unsigned long long)s->paddr,
				 (unsigned long long)(s->paddr + s->memsz),
				 (unsigned long long)(m->size / MIB));
			return -1;
		}
	}
	for (unsigned i = 0; i < info->nload; i++) {
		const struct elf_segment *s = &info->load[i];
		uint8_t *dst = guest_ptr(m, s->paddr, s->memsz);
		memcpy(dst, buf + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}
