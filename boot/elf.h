/*
 * ELF64 x86-64 kernels: parsing (pure, on a buffer), PVH note lookup and
 * loading of PT_LOAD segments at their physical addresses.
 */
#ifndef VMM_BOOT_ELF_H
#define VMM_BOOT_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../mem.h"

#define ELF_MAX_LOAD 32
#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct elf_segment {
	uint64_t paddr;
	uint64_t vaddr;
	uint64_t offset;
	uint64_t filesz;
	uint64_t memsz;
};

struct elf_info {
	uint64_t entry;	    /* physical entry for the Linux 64-bit protocol */
	bool pvh;	    /* a XEN_ELFNOTE_PHYS32_ENTRY note was found */
	uint32_t pvh_entry; /* its value: 32-bit physical entry */
	unsigned nload;
	struct elf_segment load[ELF_MAX_LOAD]; /* PT_LOAD with memsz > 0 */
	uint64_t start;			       /* lowest p_paddr */
	uint64_t end;			       /* highest p_paddr + p_memsz */
};

/* True if buf starts with the ELF magic. */
bool elf_detect(const uint8_t *buf, size_t len);

/* Parse and validate an ELF64 little-endian x86-64 executable in
 * buf[0, len): header, program headers, segment bounds against the file,
 * filesz <= memsz, address overflow, notes. Does not look at guest RAM.
 * Returns 0, or -1 with a one-line reason in err. */
int elf_parse(const uint8_t *buf, size_t len, struct elf_info *out, char *err, size_t errlen);

/* Walk the notes in note[0, size) (entries aligned to `align`, 4 or 8),
 * recording a Xen PHYS32_ENTRY note in out. Returns 0, or -1 with a reason
 * for a malformed note. */
int elf_parse_notes(const uint8_t *note, uint64_t size, uint64_t align, struct elf_info *out,
		    char *err, size_t errlen);

/* Check every segment lies in guest RAM, then copy it and zero its bss.
 * Returns 0, or -1 with a reason naming the segment. */
int elf_load(struct guest_mem *m, const uint8_t *buf, const struct elf_info *info, char *err,
	     size_t errlen);

#endif
