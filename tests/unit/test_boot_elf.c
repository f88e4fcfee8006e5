/* ELF64 parsing and loading (boot/elf.c) on crafted images. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/elf.h"
#include "mem.h"

#define IMG_SIZE 0x3000
#define DATA_OFF 0x1000
#define NOTE_OFF 0x2000

static uint8_t img[IMG_SIZE];
static char err[256];

/* One PT_LOAD of 0x100 file bytes (memsz 0x200) at paddr 0x100000,
 * vaddr 0xffffffff80100000, entry at paddr 0x100010. */
static void build(void)
{
	memset(img, 0, sizeof(img));
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = 0x100010;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 1;
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + eh->e_phoff);
	ph->p_type = PT_LOAD;
	ph->p_offset = DATA_OFF;
	ph->p_paddr = 0x100000;
	ph->p_vaddr = 0xffffffff80100000ULL;
	ph->p_filesz = 0x100;
	ph->p_memsz = 0x200;
	ph->p_align = 0x1000;
	memset(img + DATA_OFF, 0xAB, 0x100);
}

static Elf64_Ehdr *ehdr(void)
{
	return (Elf64_Ehdr *)img;
}

static Elf64_Phdr *phdr(unsigned i)
{
	return (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

/* Append a PT_NOTE program header covering `len` bytes at NOTE_OFF. */
static void add_note_phdr(uint64_t len)
{
	unsigned i = ehdr()->e_phnum++;
	Elf64_Phdr *ph = phdr(i);
	memset(ph, 0, sizeof(*ph));
	ph->p_type = PT_NOTE;
	ph->p_offset = NOTE_OFF;
	ph->p_filesz = len;
	ph->p_align = 4;
}

/* Write a note at NOTE_OFF + off; returns its padded size. */
static size_t put_note(size_t off, uint32_t namesz, const char *name, uint32_t descsz,
		       uint32_t type, const void *desc)
{
	uint8_t *p = img + NOTE_OFF + off;
	memcpy(p, &namesz, 4);
	memcpy(p + 4, &descsz, 4);
	memcpy(p + 8, &type, 4);
	size_t nlen = (namesz + 3) & ~3u;
	if (name)
		memcpy(p + 12, name, namesz);
	if (desc)
		memcpy(p + 12 + nlen, desc, descsz);
	return 12 + nlen + ((descsz + 3) & ~3u);
}

static int parse(size_t len, struct elf_info *info)
{
	err[0] = 0;
	return elf_parse(img, len, info, err, sizeof(err));
}

static void test_valid_linux64(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	assert_false(info.pvh);
	assert_int_equal(info.nload, 1);
	assert_int_equal(info.entry, 0x100010);
	assert_int_equal(info.start, 0x100000);
	assert_int_equal(info.end, 0x100200);
}

static void test_virtual_entry_translated(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	ehdr()->e_entry = 0xffffffff80100020ULL;
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	assert_int_equal(info.entry, 0x100020);
}

static void test_entry_outside(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	ehdr()->e_entry = 0x5000000;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "entry point"));
}

static void test_bad_magic(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	img[1] = 'X';
	assert_false(elf_detect(img, IMG_SIZE));
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "not an ELF64 x86-64 image"));
}

static void test_bad_class(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	img[EI_CLASS] = ELFCLASS32;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "class 1"));
}

static void test_big_endian(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	img[EI_DATA] = ELFDATA2MSB;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "little-endian"));
}

static void test_bad_machine(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	ehdr()->e_machine = EM_AARCH64;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "not x86-64"));
}

static void test_not_exec(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	ehdr()->e_type = ET_REL;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "not an executable"));
}

static void test_truncated_header(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	assert_int_equal(parse(20, &info), -1);
	assert_non_null(strstr(err, "truncated"));
}

static void test_phdr_past_eof(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	ehdr()->e_phoff = IMG_SIZE - 10;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "program header table"));
	build();
	ehdr()->e_phoff = UINT64_MAX - 8; /* offset + size wraps */
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	build();
	ehdr()->e_phnum = 60; /* 64 + 60*56 > file */
	assert_int_equal(parse(1024, &info), -1);
}

static void test_no_phdrs(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	ehdr()->e_phnum = 0;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	build();
	ehdr()->e_phentsize = 32;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
}

static void test_segment_offset_overflow(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	phdr(0)->p_offset = UINT64_MAX - 0x10; /* p_offset + p_filesz overflows */
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "beyond the end of the file"));
	build();
	phdr(0)->p_offset = IMG_SIZE - 0x80; /* runs 0x80 past EOF */
	assert_int_equal(parse(IMG_SIZE, &info), -1);
}

static void test_filesz_gt_memsz(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	phdr(0)->p_memsz = 0x80;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "exceeds memory size"));
}

static void test_paddr_overflow(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	phdr(0)->p_paddr = UINT64_MAX - 0x100;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "overflows"));
}

static void test_no_load(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	phdr(0)->p_type = PT_NULL;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "no loadable"));
}

static void test_pvh_note(void **state)
{
	(void)state;
	struct elf_info info;
	uint32_t entry = 0x100040;
	build();
	size_t off = put_note(0, 4, "GNU", 4, 3, "abcd"); /* another note first */
	off += put_note(off, 4, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry);
	add_note_phdr(off);
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	assert_true(info.pvh);
	assert_int_equal(info.pvh_entry, 0x100040);
}

static void test_pvh_note_8byte(void **state)
{
	(void)state;
	struct elf_info info;
	uint64_t entry = 0x100080;
	build();
	add_note_phdr(put_note(0, 4, "Xen", 8, XEN_ELFNOTE_PHYS32_ENTRY, &entry));
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	assert_true(info.pvh);
	assert_int_equal(info.pvh_entry, 0x100080);
	entry = 0x100000000ULL;
	build();
	add_note_phdr(put_note(0, 4, "Xen", 8, XEN_ELFNOTE_PHYS32_ENTRY, &entry));
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "above 4 GiB"));
}

static void test_other_xen_note_ignored(void **state)
{
	(void)state;
	struct elf_info info;
	uint32_t v = 0x1234;
	build();
	add_note_phdr(put_note(0, 4, "Xen", 4, 6 /* another type */, &v));
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	assert_false(info.pvh);
}

static void test_note_malformed(void **state)
{
	(void)state;
	struct elf_info info;
	uint32_t entry = 0x100040;
	/* namesz runs past the segment */
	build();
	put_note(0, 0x1000, NULL, 4, XEN_ELFNOTE_PHYS32_ENTRY, NULL);
	add_note_phdr(24);
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "malformed ELF note"));
	/* huge namesz: align_up must not wrap */
	build();
	put_note(0, UINT32_MAX, NULL, 4, XEN_ELFNOTE_PHYS32_ENTRY, NULL);
	add_note_phdr(24);
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	/* huge descsz */
	build();
	put_note(0, 4, "Xen", UINT32_MAX, XEN_ELFNOTE_PHYS32_ENTRY, NULL);
	add_note_phdr(24);
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	/* Xen entry note with a 2-byte value */
	build();
	add_note_phdr(put_note(0, 4, "Xen", 2, XEN_ELFNOTE_PHYS32_ENTRY, &entry));
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	/* note segment beyond the file */
	build();
	add_note_phdr(0x2000);
	assert_int_equal(parse(IMG_SIZE, &info), -1);
}

static void test_note_trailing_padding(void **state)
{
	(void)state;
	struct elf_info info;
	uint8_t notes[8] = {0};
	/* fewer than 12 bytes left: ignored, not an error */
	assert_int_equal(elf_parse_notes(notes, sizeof(notes), 4, &info, err, sizeof(err)), 0);
}

static void test_load_into_ram(void **state)
{
	(void)state;
	struct guest_mem m;
	struct elf_info info;
	build();
	assert_int_equal(guest_mem_init(&m, 4 * MIB, 0), 0);
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	memset(m.host + 0x100000, 0x55, 0x400);
	assert_int_equal(elf_load(&m, img, &info, err, sizeof(err)), 0);
	assert_int_equal(m.host[0x100000], 0xAB);
	assert_int_equal(m.host[0x1000ff], 0xAB);
	assert_int_equal(m.host[0x100100], 0); /* bss zeroed */
	assert_int_equal(m.host[0x1001ff], 0);
	assert_int_equal(m.host[0x100200], 0x55); /* past memsz untouched */
	guest_mem_destroy(&m);
}

static void test_load_beyond_ram(void **state)
{
	(void)state;
	struct guest_mem m;
	struct elf_info info;
	assert_int_equal(guest_mem_init(&m, 4 * MIB, 0), 0);
	build();
	phdr(0)->p_paddr = 4 * MIB - 0x100; /* memsz 0x200 crosses the end */
	ehdr()->e_entry = phdr(0)->p_paddr;
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	assert_int_equal(elf_load(&m, img, &info, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "outside guest RAM"));
	guest_mem_destroy(&m);
}

static void test_load_in_hole(void **state)
{
	(void)state;
	struct guest_mem m;
	struct elf_info info;
	/* 3 GiB + 4 MiB: RAM at [0, 3 GiB) and [4 GiB, 4 GiB + 4 MiB) */
	assert_int_equal(guest_mem_init(&m, 3 * GIB + 4 * MIB, 0), 0);
	build();
	phdr(0)->p_paddr = 0xD0000000ULL;
	ehdr()->e_entry = phdr(0)->p_paddr;
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	assert_int_equal(elf_load(&m, img, &info, err, sizeof(err)), -1);
	/* straddling the start of the hole */
	build();
	phdr(0)->p_paddr = MMIO_HOLE_START - 0x100;
	ehdr()->e_entry = phdr(0)->p_paddr;
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	assert_int_equal(elf_load(&m, img, &info, err, sizeof(err)), -1);
	/* above 4 GiB is RAM */
	build();
	phdr(0)->p_paddr = MMIO_HOLE_END;
	ehdr()->e_entry = phdr(0)->p_paddr;
	assert_int_equal(parse(IMG_SIZE, &info), 0);
	assert_int_equal(elf_load(&m, img, &info, err, sizeof(err)), 0);
	guest_mem_destroy(&m);
}

static void test_too_many_segments(void **state)
{
	(void)state;
	struct elf_info info;
	build();
	unsigned n = ELF_MAX_LOAD + 1;
	for (unsigned i = 1; i < n; i++)
		*phdr(i) = *phdr(0);
	ehdr()->e_phnum = (uint16_t)n;
	assert_int_equal(parse(IMG_SIZE, &info), -1);
	assert_non_null(strstr(err, "more than"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_linux64),
	    cmocka_unit_test(test_virtual_entry_translated),
	    cmocka_unit_test(test_entry_outside),
	    cmocka_unit_test(test_bad_magic),
	    cmocka_unit_test(test_bad_class),
	    cmocka_unit_test(test_big_endian),
	    cmocka_unit_test(test_bad_machine),
	    cmocka_unit_test(test_not_exec),
	    cmocka_unit_test(test_truncated_header),
	    cmocka_unit_test(test_phdr_past_eof),
	    cmocka_unit_test(test_no_phdrs),
	    cmocka_unit_test(test_segment_offset_overflow),
	    cmocka_unit_test(test_filesz_gt_memsz),
	    cmocka_unit_test(test_paddr_overflow),
	    cmocka_unit_test(test_no_load),
	    cmocka_unit_test(test_pvh_note),
	    cmocka_unit_test(test_pvh_note_8byte),
	    cmocka_unit_test(test_other_xen_note_ignored),
	    cmocka_unit_test(test_note_malformed),
	    cmocka_unit_test(test_note_trailing_padding),
	    cmocka_unit_test(test_load_into_ram),
	    cmocka_unit_test(test_load_beyond_ram),
	    cmocka_unit_test(test_load_in_hole),
	    cmocka_unit_test(test_too_many_segments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
