/*
 * boot_load() end to end on crafted kernel and initrd files: formats,
 * the structures it writes, and its one-line errors.
 */
#include <elf.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "boot/boot.h"
#include "boot/e820.h"
#include "boot/layout.h"
#include "boot/zeropage.h"

static struct vm vm;
static struct vm_config cfg;
static char errbuf[4096];
static char paths[4][64];
static unsigned npaths;

/* ---- helpers ---- */

static const char *tmpfile_with(const void *data, size_t len)
{
	char *p = paths[npaths++ % 4];
	strcpy(p, "/tmp/vmm-test-boot-XXXXXX");
	int fd = mkstemp(p);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return p;
}

static int setup(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	cfg.cpus = 2;
	vm.cfg = &cfg;
	vm.kvm_fd = vm.vm_fd = -1;
	return guest_mem_init(&vm.mem, 64 * MIB, 0) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	guest_mem_destroy(&vm.mem);
	for (unsigned i = 0; i < 4; i++)
		if (paths[i][0])
			unlink(paths[i]);
	return 0;
}

/* Run boot_load with stderr captured into errbuf. */
static int load(const char *kernel, const char *initrd, const char *cmdline, struct boot_setup *out)
{
	struct boot_request req = {.kernel_path = kernel, .initrd_path = initrd, .cmdline = cmdline};
	fflush(stderr);
	int saved = dup(2);
	FILE *f = tmpfile();
	dup2(fileno(f), 2);
	int rc = boot_load(&vm, &req, out);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	size_t n = fread(errbuf, 1, sizeof(errbuf) - 1, f);
	errbuf[n] = 0;
	fclose(f);
	return rc;
}

static void expect_error(int rc, const char *path, const char *what)
{
	assert_int_equal(rc, -1);
	if (!strstr(errbuf, what) || (path && !strstr(errbuf, path)))
		fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", errbuf, what, path ? path : "");
	assert_non_null(strstr(errbuf, "vmm: "));
	/* one line */
	assert_non_null(strchr(errbuf, '\n'));
	assert_int_equal(strchr(errbuf, '\n')[1], 0);
}

static uint32_t g32(uint64_t gpa)
{
	uint32_t v;
	assert_true(guest_read(&vm.mem, gpa, &v, 4));
	return v;
}

static uint64_t g64(uint64_t gpa)
{
	uint64_t v;
	assert_true(guest_read(&vm.mem, gpa, &v, 8));
	return v;
}

/* ---- crafted images ---- */

#define ELF_SIZE 0x3000
static uint8_t elf[ELF_SIZE];

/* One PT_LOAD [paddr, +0x1000) from file offset 0x1000; optional PVH note. */
static void build_elf(uint64_t paddr, bool pvh)
{
	memset(elf, 0, sizeof(elf));
	Elf64_Ehdr *eh = (Elf64_Ehdr *)elf;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_entry = paddr + 0x10;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = pvh ? 2 : 1;
	Elf64_Phdr *ph = (Elf64_Phdr *)(elf + sizeof(*eh));
	ph[0].p_type = PT_LOAD;
	ph[0].p_offset = 0x1000;
	ph[0].p_paddr = ph[0].p_vaddr = paddr;
	ph[0].p_filesz = 0x800;
	ph[0].p_memsz = 0x1000;
	memset(elf + 0x1000, 0xC3, 0x800);
	if (pvh) {
		uint32_t note[] = {4, 4, 18, 0x006e6558 /* "Xen\0" */, (uint32_t)paddr + 0x20};
		memcpy(elf + 0x2000, note, sizeof(note));
		ph[1].p_type = PT_NOTE;
		ph[1].p_offset = 0x2000;
		ph[1].p_filesz = sizeof(note);
		ph[1].p_align = 4;
	}
}

#define BZ_SETUP_SECTS 4
#define BZ_PM 0x4000
#define BZ_SIZE ((BZ_SETUP_SECTS + 1) * 512 + BZ_PM)
static uint8_t bz[BZ_SIZE];

static void bz16(size_t o, uint16_t v)
{
	memcpy(bz + o, &v, 2);
}
static void bz32(size_t o, uint32_t v)
{
	memcpy(bz + o, &v, 4);
}

static void build_bz(void)
{
	memset(bz, 0, sizeof(bz));
	bz[0x1f1] = BZ_SETUP_SECTS;
	bz32(0x1f4, BZ_PM / 16);
	bz16(0x1fe, 0xaa55);
	bz[0x201] = 0x6a;
	bz32(0x202, 0x53726448);
	bz16(0x206, 0x020f);
	bz[0x211] = LOADFLAG_LOADED_HIGH;
	bz32(0x22c, 0x7fffffff);
	bz32(0x230, 0x200000);
	bz[0x234] = 1;
	bz16(0x236, XLF_KERNEL_64);
	bz32(0x238, 255);
	uint64_t pref = 0x1000000;
	memcpy(bz + 0x258, &pref, 8);
	bz32(0x260, 0x800000);
	memset(bz + (BZ_SETUP_SECTS + 1) * 512, 0x90, BZ_PM);
}

/* ---- file errors ---- */

static void test_missing_kernel(void **state)
{
	(void)state;
	struct boot_setup bs;
	expect_error(load("/nonexistent/vmlinux", NULL, "", &bs), "/nonexistent/vmlinux",
		     "cannot open");
}

static void test_empty_kernel(void **state)
{
	(void)state;
	struct boot_setup bs;
	const char *p = tmpfile_with("", 0);
	expect_error(load(p, NULL, "", &bs), p, "empty");
}

static void test_directory_kernel(void **state)
{
	(void)state;
	struct boot_setup bs;
	expect_error(load("/tmp", NULL, "", &bs), "/tmp", "not a regular file");
}

static void test_garbage_kernel(void **state)
{
	(void)state;
	struct boot_setup bs;
	char junk[4096];
	memset(junk, 'x', sizeof(junk));
	const char *p = tmpfile_with(junk, sizeof(junk));
	expect_error(load(p, NULL, "", &bs), p, "not an ELF64 x86-64 image or a bzImage");
}

/* ---- ELF ---- */

static void test_elf_linux64(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_elf(0x200000, false);
	const char *p = tmpfile_with(elf, sizeof(elf));
	assert_int_equal(load(p, NULL, "console=ttyS0 guest.test=hello", &bs), 0);
	assert_int_equal(bs.protocol, BOOT_LINUX64);
	assert_string_equal(bs.format, "ELF vmlinux");
	assert_int_equal(bs.entry, 0x200010);
	assert_int_equal(bs.info_gpa, BOOT_ZEROPAGE_ADDR);
	/* kernel bytes and bss */
	assert_int_equal(vm.mem.host[0x200000], 0xC3);
	assert_int_equal(vm.mem.host[0x2007ff], 0xC3);
	assert_int_equal(vm.mem.host[0x200800], 0);
	/* zero page */
	assert_int_equal(g32(BOOT_ZEROPAGE_ADDR + 0x202), 0x53726448);
	assert_int_equal(g32(BOOT_ZEROPAGE_ADDR + 0x228), BOOT_CMDLINE_ADDR);
	assert_int_equal(vm.mem.host[BOOT_ZEROPAGE_ADDR + 0x210], 0xff);
	assert_int_equal(vm.mem.host[BOOT_ZEROPAGE_ADDR + 0x1e8], 4);
	assert_int_equal(g64(BOOT_ZEROPAGE_ADDR + 0x2d0 + 3 * 20 + 8), 63 * MIB);
	assert_string_equal((char *)vm.mem.host + BOOT_CMDLINE_ADDR,
			    "console=ttyS0 guest.test=hello");
	/* page tables, GDT, MP table */
	assert_int_equal(g64(BOOT_PML4_ADDR), BOOT_PDPT_ADDR | 3);
	assert_int_equal(g64(BOOT_GDT_ADDR + 0x10), 0x00af9b000000ffffULL);
	assert_memory_equal(vm.mem.host + BOOT_MPF_ADDR, "_MP_", 4);
	assert_memory_equal(vm.mem.host + BOOT_MPC_ADDR, "PCMP", 4);
	uint16_t count;
	memcpy(&count, vm.mem.host + BOOT_MPC_ADDR + 34, 2);
	assert_int_equal(count, 2 + 2 + 16 + 2); /* cfg->cpus used before vm->ncpus is set */
}

static void test_elf_pvh(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_elf(0x100000, true);
	const char *p = tmpfile_with(elf, sizeof(elf));
	assert_int_equal(load(p, NULL, "pvh", &bs), 0);
	assert_int_equal(bs.protocol, BOOT_PVH);
	assert_string_equal(bs.format, "PVH ELF");
	assert_int_equal(bs.entry, 0x100020);
	assert_int_equal(bs.info_gpa, BOOT_PVH_INFO_ADDR);
	assert_int_equal(g32(BOOT_PVH_INFO_ADDR), 0x336ec578);
	assert_int_equal(g64(BOOT_PVH_INFO_ADDR + 24), BOOT_CMDLINE_ADDR);
	assert_int_equal(g32(BOOT_PVH_INFO_ADDR + 48), 4);
	assert_string_equal((char *)vm.mem.host + BOOT_CMDLINE_ADDR, "pvh");
}

static void test_pvh_entry_outside_ram(void **state)
{
	(void)state;
	struct boot_setup bs;
	uint32_t far = 0x8000000; /* 128 MiB in a 64 MiB guest */
	build_elf(0x100000, true);
	memcpy(elf + 0x2000 + 16, &far, 4);
	const char *p = tmpfile_with(elf, sizeof(elf));
	expect_error(load(p, NULL, "", &bs), p, "entry point 0x8000000 is outside guest RAM");
}

static void test_elf_below_1m(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_elf(0x80000, false);
	const char *p = tmpfile_with(elf, sizeof(elf));
	expect_error(load(p, NULL, "", &bs), p, "overlapping the boot structures");
}

static void test_elf_outside_ram(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_elf(0x8000000, false); /* 128 MiB in a 64 MiB guest */
	const char *p = tmpfile_with(elf, sizeof(elf));
	expect_error(load(p, NULL, "", &bs), p, "outside guest RAM");
	build_elf(64 * MIB - 0x800, false); /* straddles the end */
	p = tmpfile_with(elf, sizeof(elf));
	expect_error(load(p, NULL, "", &bs), p, "outside guest RAM");
}

static void test_elf_truncated(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_elf(0x200000, false);
	const char *p = tmpfile_with(elf, 0x1400); /* segment runs past EOF */
	expect_error(load(p, NULL, "", &bs), p, "beyond the end of the file");
}

static void test_elf_cmdline_limit(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_elf(0x200000, false);
	const char *p = tmpfile_with(elf, sizeof(elf));
	char *cmd = malloc(BOOT_CMDLINE_MAX + 1);
	memset(cmd, 'a', BOOT_CMDLINE_MAX);
	cmd[BOOT_CMDLINE_MAX - 1] = 0; /* 64 KiB - 1 characters: fits */
	assert_int_equal(load(p, NULL, cmd, &bs), 0);
	cmd[BOOT_CMDLINE_MAX - 1] = 'a';
	cmd[BOOT_CMDLINE_MAX] = 0;
	expect_error(load(p, NULL, cmd, &bs), p, "command line");
	free(cmd);
}

/* ---- bzImage ---- */

static void test_bzimage(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_bz();
	const char *p = tmpfile_with(bz, sizeof(bz));
	assert_int_equal(load(p, NULL, "root=/dev/vda", &bs), 0);
	assert_int_equal(bs.protocol, BOOT_LINUX64);
	assert_string_equal(bs.format, "bzImage");
	assert_int_equal(bs.entry, 0x1000200);
	assert_int_equal(vm.mem.host[0x1000000], 0x90);
	assert_int_equal(vm.mem.host[0x1000000 + BZ_PM - 1], 0x90);
	assert_int_equal(vm.mem.host[0x1000000 + BZ_PM], 0);
	/* header copied, loader fields written */
	uint64_t zp = BOOT_ZEROPAGE_ADDR;
	assert_int_equal(g32(zp + 0x202), 0x53726448);
	assert_int_equal(g32(zp + 0x206) & 0xffff, 0x020f);
	assert_int_equal(g32(zp + 0x238), 255);
	assert_int_equal(g32(zp + 0x260), 0x800000);
	assert_int_equal(vm.mem.host[zp + 0x210], 0xff);
	assert_int_equal(vm.mem.host[zp + 0x211] & 0x81, 0x81);
	assert_int_equal(g32(zp + 0x228), BOOT_CMDLINE_ADDR);
	assert_int_equal(g32(zp + 0x214), 0x1000000); /* code32_start */
	assert_int_equal(g32(zp + 0x218), 0);	      /* no initrd */
}

static void test_bzimage_old_protocol(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_bz();
	bz16(0x206, 0x0204);
	const char *p = tmpfile_with(bz, sizeof(bz));
	expect_error(load(p, NULL, "", &bs), p, "bzImage boot protocol 2.04 is older than 2.06");
}

static void test_bzimage_no_64bit(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_bz();
	bz16(0x236, 0);
	const char *p = tmpfile_with(bz, sizeof(bz));
	expect_error(load(p, NULL, "", &bs), p, "XLF_KERNEL_64");
}

static void test_bzimage_init_size_too_big(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_bz();
	bz32(0x260, 60 * MIB); /* 16 MiB + 60 MiB > 64 MiB */
	const char *p = tmpfile_with(bz, sizeof(bz));
	expect_error(load(p, NULL, "", &bs), p, "init_size");
}

static void test_bzimage_truncated(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_bz();
	const char *p = tmpfile_with(bz, sizeof(bz) - 0x1000);
	expect_error(load(p, NULL, "", &bs), p, "truncated");
}

static void test_bzimage_cmdline_size(void **state)
{
	(void)state;
	struct boot_setup bs;
	char cmd[300];
	build_bz();
	const char *p = tmpfile_with(bz, sizeof(bz));
	memset(cmd, 'c', sizeof(cmd));
	cmd[255] = 0;
	assert_int_equal(load(p, NULL, cmd, &bs), 0);
	cmd[255] = 'c';
	cmd[256] = 0;
	expect_error(load(p, NULL, cmd, &bs), p, "cmdline_size");
}

/* ---- initrd ---- */

static void test_initrd_bzimage(void **state)
{
	(void)state;
	struct boot_setup bs;
	static uint8_t rd[3 * 4096 + 5];
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (uint8_t)(i * 13);
	build_bz();
	bz32(0x22c, 0x37ffffff);
	const char *k = tmpfile_with(bz, sizeof(bz));
	const char *r = tmpfile_with(rd, sizeof(rd));
	assert_int_equal(load(k, r, "", &bs), 0);
	uint32_t addr = g32(BOOT_ZEROPAGE_ADDR + 0x218);
	assert_int_equal(g32(BOOT_ZEROPAGE_ADDR + 0x21c), sizeof(rd));
	assert_int_equal(addr % 4096, 0);
	assert_true(addr + sizeof(rd) <= 64 * MIB);
	assert_true(addr + sizeof(rd) > 64 * MIB - 4096); /* as high as possible */
	assert_memory_equal(vm.mem.host + addr, rd, sizeof(rd));
}

static void test_initrd_addr_max(void **state)
{
	(void)state;
	struct boot_setup bs;
	static uint8_t rd[8192];
	build_bz();
	bz32(0x22c, 48 * MIB - 1); /* initrd must end at or below 48 MiB */
	const char *k = tmpfile_with(bz, sizeof(bz));
	const char *r = tmpfile_with(rd, sizeof(rd));
	assert_int_equal(load(k, r, "", &bs), 0);
	uint32_t addr = g32(BOOT_ZEROPAGE_ADDR + 0x218);
	assert_int_equal(addr, 48 * MIB - 8192);
	/* the kernel occupies [16, 24) MiB: the initrd goes below it if needed */
	bz32(0x22c, 20 * MIB - 1);
	k = tmpfile_with(bz, sizeof(bz));
	assert_int_equal(load(k, r, "", &bs), 0);
	assert_int_equal(g32(BOOT_ZEROPAGE_ADDR + 0x218), 16 * MIB - 8192);
}

static void test_initrd_too_big(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_elf(0x200000, false);
	const char *k = tmpfile_with(elf, sizeof(elf));
	const char *r = paths[npaths++ % 4];
	strcpy((char *)r, "/tmp/vmm-test-boot-XXXXXX");
	int fd = mkstemp((char *)r);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 80 * MIB), 0); /* sparse: more than the guest has */
	close(fd);
	expect_error(load(k, r, "", &bs), r, "do not fit");
}

static void test_initrd_missing(void **state)
{
	(void)state;
	struct boot_setup bs;
	build_elf(0x200000, false);
	const char *k = tmpfile_with(elf, sizeof(elf));
	expect_error(load(k, "/nonexistent/initrd.img", "", &bs), "/nonexistent/initrd.img",
		     "initrd");
}

static void test_initrd_pvh_module(void **state)
{
	(void)state;
	struct boot_setup bs;
	static uint8_t rd[5000];
	memset(rd, 0x42, sizeof(rd));
	build_elf(0x100000, true);
	const char *k = tmpfile_with(elf, sizeof(elf));
	const char *r = tmpfile_with(rd, sizeof(rd));
	assert_int_equal(load(k, r, "", &bs), 0);
	assert_int_equal(g32(BOOT_PVH_INFO_ADDR + 12), 1);
	uint64_t mod = g64(BOOT_PVH_INFO_ADDR + 16);
	uint64_t addr = g64(mod), size = g64(mod + 8);
	assert_int_equal(size, sizeof(rd));
	assert_int_equal(addr % 4096, 0);
	assert_memory_equal(vm.mem.host + addr, rd, sizeof(rd));
}

static void test_too_little_ram(void **state)
{
	(void)state;
	struct boot_setup bs;
	struct guest_mem saved = vm.mem;
	assert_int_equal(guest_mem_init(&vm.mem, 512 * 1024, 0), 0);
	build_elf(0x200000, false);
	const char *k = tmpfile_with(elf, sizeof(elf));
	expect_error(load(k, NULL, "", &bs), NULL, "too small");
	guest_mem_destroy(&vm.mem);
	vm.mem = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_missing_kernel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_kernel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_directory_kernel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_kernel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_linux64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_pvh, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pvh_entry_outside_ram, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_below_1m, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_outside_ram, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_cmdline_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzimage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzimage_old_protocol, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzimage_no_64bit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzimage_init_size_too_big, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzimage_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzimage_cmdline_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_bzimage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_addr_max, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_too_big, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_pvh_module, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_little_ram, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
