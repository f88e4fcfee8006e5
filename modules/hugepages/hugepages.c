/*
 * The hugepages module: guest RAM on hugetlb pages of 2 MiB or 1 GiB
 * (--mem-hugepages, or machine-config huge_pages "2M"/"1G").
 *
 * Hugetlb pages are a pool the host reserves ahead (nr_hugepages). The RAM
 * is taken from the pool when it is mapped, not when the guest first
 * touches it: a short pool then fails at start-up with the number of pages
 * needed, instead of a SIGBUS in the middle of the guest's life.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "mem.h"
#include "module.h"
#include "vmm.h"

static uint64_t page_bytes(enum huge_pages hp)
{
	return hp == HUGE_PAGES_1G ? GIB : 2 * MIB;
}

static bool is_hugetlb(const struct vm_config *cfg)
{
	return cfg->huge_pages == HUGE_PAGES_2M || cfg->huge_pages == HUGE_PAGES_1G;
}

static bool hp_parse_flag(const char *flag, const char *arg, struct vm_config *cfg, FILE *err)
{
	enum huge_pages hp;
	if (strcmp(arg, "2M") == 0) {
		hp = HUGE_PAGES_2M;
	} else if (strcmp(arg, "1G") == 0) {
		hp = HUGE_PAGES_1G;
	} else {
		fprintf(err, "vmm: --%s: invalid value '%s' (expected 2M or 1G)\n", flag, arg);
		return false;
	}
	if (cfg->huge_pages == HUGE_PAGES_TRANSPARENT) {
		fprintf(err, "vmm: --%s: cannot be combined with --mem-thp (one page size for RAM)\n",
			flag);
		return false;
	}
	cfg->huge_pages = hp;
	return true;
}

/* A counter of /sys/kernel/mm/hugepages/hugepages-<size>kB/. */
static bool read_pool(uint64_t page, const char *what, uint64_t *out)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/%s",
		 page / 1024, what);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fscanf(f, "%" SCNu64, out) == 1;
	fclose(f);
	return ok;
}

/* Are there enough unreserved pages in the pool? Says how many are needed
 * and how to get them if not. */
static int check_pool(const struct vm_config *cfg)
{
	uint64_t page = page_bytes(cfg->huge_pages);
	uint64_t need = cfg->mem_mib * MIB / page, free_pages, resv, total;
	if (!read_pool(page, "free_hugepages", &free_pages) || !read_pool(page, "resv_hugepages", &resv) ||
	    !read_pool(page, "nr_hugepages", &total)) {
		vmm_err("--mem-hugepages %s: this host has no %s hugetlb pool "
			"(/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB)",
			page == GIB ? "1G" : "2M", page == GIB ? "1 GiB" : "2 MiB", page / 1024);
		return VMM_EXIT_RESOURCE;
	}
	uint64_t avail = free_pages > resv ? free_pages - resv : 0;
	if (avail >= need)
		return 0;
	vmm_err("--mem-hugepages %s: guest RAM (%" PRIu64 " MiB) needs %" PRIu64
		" hugetlb pages of %s, but only %" PRIu64 " of the pool's %" PRIu64
		" are free: reserve at least %" PRIu64
		" more (echo %" PRIu64 " > /sys/kernel/mm/hugepages/hugepages-%" PRIu64
		"kB/nr_hugepages)",
		page == GIB ? "1G" : "2M", cfg->mem_mib, need, page == GIB ? "1 GiB" : "2 MiB",
		avail, total, need - avail, total + (need - avail), page / 1024);
	return VMM_EXIT_RESOURCE;
}

static int hp_check(const struct vm_config *cfg)
{
	if (!is_hugetlb(cfg))
		return 0;
	uint64_t page = page_bytes(cfg->huge_pages);
	if ((cfg->mem_mib * MIB) % page) {
		vmm_err("--mem-hugepages %s: guest RAM (%" PRIu64 " MiB) must be a multiple of %" PRIu64
			" MiB",
			page == GIB ? "1G" : "2M", cfg->mem_mib, (uint64_t)(page / MIB));
		return VMM_EXIT_USAGE;
	}
	if (cfg->mem_merge) {
		vmm_err("--mem-merge: KSM does not merge hugetlb pages: drop --mem-merge or "
			"--mem-hugepages");
		return VMM_EXIT_USAGE;
	}
	return check_pool(cfg);
}

static int hp_mem_prepare(const struct vm_config *cfg, struct mem_request *req)
{
	if (!is_hugetlb(cfg))
		return 0;
	req->backing = MEM_SHARED_MEMFD;
	req->page_size = page_bytes(cfg->huge_pages);
	req->memfd_flags |= MFD_HUGETLB |
			    (cfg->huge_pages == HUGE_PAGES_1G ? MFD_HUGE_1GB : MFD_HUGE_2MB);
	req->reserve = true;
	req->thp = false;
	return 0;
}

static const struct vmm_module_flag hp_flags[] = {
	{"mem-hugepages", true},
	{NULL, false},
};

static const struct vmm_module hugepages_module = {
	.name = "hugepages",
	.usage = "  --mem-hugepages 2M|1G\n"
		 "                       guest RAM on hugetlb pages of that size, taken from the\n"
		 "                       host's pool at start-up (module hugepages)\n",
	.flags = hp_flags,
	.parse_flag = hp_parse_flag,
	.check = hp_check,
	.mem_prepare = hp_mem_prepare,
};

VMM_MODULE(hugepages_module);
