/*
 * boot_load(): read the kernel, detect its format, load it, then write the
 * command line, the initrd and the protocol's boot structures.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../log.h"
#include "acpi.h"
#include "boot.h"
#include "bzimage.h"
#include "elf.h"
#include "initrd.h"
#include "kfile.h"
#include "layout.h"
#include "mptable.h"
#include "pvh.h"
#include "x86_cpu.h"
#include "zeropage.h"

#define ERRLEN 256

/* What the format-specific part tells the rest. */
struct kernel_image {
	enum boot_protocol protocol;
	const char *format;
	uint64_t entry;
	uint64_t start, end;	  /* guest range the kernel occupies */
	uint64_t cmdline_max;	  /* longest command line, NUL excluded */
	uint64_t initrd_addr_max; /* highest byte the initrd may use */
	bool bzimage;
	struct bzimage_header bz;
};

static int check_start(const char *path, const struct kernel_image *k)
{
	if (k->start < BOOT_KERNEL_MIN) {
		vmm_err("kernel %s: loads at 0x%llx, overlapping the boot structures below 1 MiB",
			path, (unsigned long long)k->start);
		return -1;
	}
	return 0;
}

/* After loading: the entry point must be RAM. */
static int check_entry(const char *path, const struct guest_mem *m, const struct kernel_image *k)
{
	if (!guest_ptr(m, k->entry, 1)) {
		vmm_err("kernel %s: entry point 0x%llx is outside guest RAM", path,
			(unsigned long long)k->entry);
		return -1;
	}
	return 0;
}

static int load_elf(struct guest_mem *m, const char *path, const uint8_t *buf, size_t len,
		    struct kernel_image *k)
{
	struct elf_info info;
	char err[ERRLEN];
	if (elf_parse(buf, len, &info, err, sizeof(err)) < 0) {
		vmm_err("kernel %s: %s", path, err);
		return -1;
	}
	k->protocol = info.pvh ? BOOT_PVH : BOOT_LINUX64;
	k->format = info.pvh ? "PVH ELF" : "ELF vmlinux";
	k->entry = info.pvh ? info.pvh_entry : info.entry;
	k->start = info.start;
	k->end = info.end;
	k->cmdline_max = BOOT_CMDLINE_MAX - 1;
	k->initrd_addr_max = BOOT_INITRD_ADDR_MAX_DEFAULT;
	if (check_start(path, k) < 0)
		return -1;
	if (elf_load(m, buf, &info, err, sizeof(err)) < 0) {
		vmm_err("kernel %s: %s", path, err);
		return -1;
	}
	return check_entry(path, m, k);
}

static int load_bzimage(struct guest_mem *m, const char *path, const uint8_t *buf, size_t len,
			struct kernel_image *k)
{
	char err[ERRLEN];
	if (bzimage_parse_header(buf, len, &k->bz, err, sizeof(err)) < 0) {
		vmm_err("kernel %s: %s", path, err);
		return -1;
	}
	uint64_t load = bzimage_load_address(&k->bz);
	k->bzimage = true;
	k->protocol = BOOT_LINUX64;
	k->format = "bzImage";
	k->entry = load + BZIMAGE_ENTRY64_OFFSET;
	k->start = load;
	k->end = load + bzimage_footprint(&k->bz);
	k->cmdline_max = k->bz.cmdline_size;
	if (k->cmdline_max > BOOT_CMDLINE_MAX - 1)
		k->cmdline_max = BOOT_CMDLINE_MAX - 1;
	k->initrd_addr_max = k->bz.initrd_addr_max;
	if (check_start(path, k) < 0)
		return -1;
	if (bzimage_load(m, buf, &k->bz, load, err, sizeof(err)) < 0) {
		vmm_err("kernel %s: %s (%llu MiB)", path, err, (unsigned long long)(m->size / MIB));
		return -1;
	}
	return check_entry(path, m, k);
}

static int load_kernel(struct guest_mem *m, const char *path, const uint8_t *buf, size_t len,
		       struct kernel_image *k)
{
	memset(k, 0, sizeof(*k));
	if (elf_detect(buf, len))
		return load_elf(m, path, buf, len, k);
	if (bzimage_detect(buf, len))
		return load_bzimage(m, path, buf, len, k);
	vmm_err("kernel %s: not an ELF64 x86-64 image or a bzImage", path);
	return -1;
}

static int write_cmdline(struct guest_mem *m, const char *path, const char *cmdline,
			 const struct kernel_image *k)
{
	size_t len = cmdline ? strlen(cmdline) : 0;
	if (len > k->cmdline_max) {
		vmm_err("kernel %s: command line is %zu bytes, longer than the kernel's limit "
			"of %llu%s",
			path, len, (unsigned long long)k->cmdline_max,
			k->bzimage ? " (cmdline_size)" : "");
		return -1;
	}
	if (!guest_write(m, BOOT_CMDLINE_ADDR, cmdline ? cmdline : "", len) ||
	    !guest_write(m, BOOT_CMDLINE_ADDR + len, "", 1)) {
		vmm_err("guest RAM too small for the command line");
		return -1;
	}
	return 0;
}

static uint64_t write_zeropage(struct guest_mem *m, const uint8_t *buf, size_t len,
			       const struct kernel_image *k, uint64_t initrd, uint64_t initrd_size,
			       uint64_t rsdp)
{
	struct boot_params *bp = malloc(sizeof(*bp));
	uint64_t gpa = 0;
	if (!bp)
		return 0;
	if (k->bzimage) {
		zeropage_init_from_image(bp, buf, len); /* len was checked by the parser */
		bp->hdr.code32_start = (uint32_t)k->start;
	} else {
		zeropage_init_synthetic(bp);
		bp->hdr.cmdline_size = (uint32_t)k->cmdline_max;
	}
	zeropage_set_loader_fields(bp, BOOT_CMDLINE_ADDR, initrd, initrd_size);
	zeropage_set_e820(bp, m);
	bp->acpi_rsdp_addr = rsdp;
	if (guest_write(m, BOOT_ZEROPAGE_ADDR, bp, sizeof(*bp)))
		gpa = BOOT_ZEROPAGE_ADDR;
	free(bp);
	return gpa;
}

/* boot_load() may run before vm->ncpus is set: fall back to the config. */
static unsigned boot_ncpus(const struct vm *vm)
{
	if (vm->ncpus)
		return vm->ncpus;
	if (vm->cfg && vm->cfg->cpus)
		return vm->cfg->cpus;
	return 1;
}

static int write_structures(struct vm *vm, const struct boot_request *req, const uint8_t *buf,
			    size_t len, const struct kernel_image *k, uint64_t initrd,
			    uint64_t initrd_size, struct boot_setup *out)
{
	struct guest_mem *m = &vm->mem;
	unsigned ncpus = boot_ncpus(vm);
	/* The DSDT lists the caller's MMIO windows. */
	uint64_t rsdp = acpi_write(m, ncpus, req->mmio_devs, req->n_mmio_devs);
	if (k->protocol == BOOT_PVH)
		out->info_gpa = pvh_write_acpi(m, BOOT_CMDLINE_ADDR, initrd, initrd_size, rsdp);
	else
		out->info_gpa = write_zeropage(m, buf, len, k, initrd, initrd_size, rsdp);
	if (!rsdp || !out->info_gpa || mptable_write(m, ncpus) < 0 || x86_write_gdt(m) < 0 ||
	    (k->protocol == BOOT_LINUX64 && x86_write_page_tables(m) < 0)) {
		vmm_err("cannot write the boot structures below 1 MiB (guest RAM %llu MiB, "
			"%u vCPUs)",
			(unsigned long long)(m->size / MIB), ncpus);
		return -1;
	}
	out->protocol = k->protocol;
	out->format = k->format;
	out->entry = k->entry;
	return 0;
}

int boot_load(struct vm *vm, const struct boot_request *req, struct boot_setup *out)
{
	struct kernel_image k;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t initrd = 0, initrd_size = 0;
	int rc = -1;

	if (vm->mem.low_size < BOOT_KERNEL_MIN) {
		vmm_err("guest RAM (%llu KiB) is too small to boot",
			(unsigned long long)(vm->mem.size >> 10));
		return -1;
	}
	if (kfile_read_all("kernel", req->kernel_path, KFILE_KERNEL_MAX, &buf, &len) < 0)
		return -1;
	if (load_kernel(&vm->mem, req->kernel_path, buf, len, &k) < 0 ||
	    write_cmdline(&vm->mem, req->kernel_path, req->cmdline, &k) < 0)
		goto out;
	if (req->initrd_path && initrd_load(&vm->mem, req->initrd_path, k.initrd_addr_max, k.start,
					    k.end, &initrd, &initrd_size) < 0)
		goto out;
	rc = write_structures(vm, req, buf, len, &k, initrd, initrd_size, out);
out:
	free(buf);
	return rc;
}
