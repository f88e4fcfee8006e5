/*
 * boot/bzimage.c's setup-header parser against a real kernel: Debian's
 * cloud bzImage as scripts/fetch-kernel.sh caches it. The expected values
 * come from two places that do not share code with the parser: raw
 * little-endian reads at the boot protocol's offsets, done here, and
 * scripts/extract-vmlinux.py --header (the .header file fetch-kernel.sh
 * writes next to the image, or the script run on the spot).
 *
 * VMM_TEST_BZIMAGE names the image (default tests/.cache/kernel/bzImage).
 * Skipped, with a message, only when that file does not exist.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "boot/bzimage.h"

#ifndef XLF_KERNEL_64
#define XLF_KERNEL_64 (1u << 0)
#endif

#define DEFAULT_BZIMAGE "tests/.cache/kernel/bzImage"

struct image {
	char path[4096];
	uint8_t *buf;
	size_t len;
};

static struct image img;

static uint32_t rd16(const uint8_t *b, size_t off) { return (uint32_t)b[off] | (uint32_t)b[off + 1] << 8; }
static uint32_t rd32(const uint8_t *b, size_t off)
{
	return rd16(b, off) | rd16(b, off + 2) << 16;
}
static uint64_t rd64(const uint8_t *b, size_t off)
{
	return (uint64_t)rd32(b, off) | (uint64_t)rd32(b, off + 4) << 32;
}

/* The image path: $VMM_TEST_BZIMAGE, else the default relative to the
 * current directory, else relative to the repo this binary was built in
 * (build/tests/x or build-asan/tests/x), so running it by hand works too. */
static void find_image(char *out, size_t n)
{
	const char *env = getenv("VMM_TEST_BZIMAGE");
	if (env && *env) {
		snprintf(out, n, "%s", env);
		return;
	}
	snprintf(out, n, "%s", DEFAULT_BZIMAGE);
	if (access(out, F_OK) == 0)
		return;
	char exe[4096];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (k > 0) {
		exe[k] = '\0';
		for (int up = 0; up < 3; up++) {
			char *slash = strrchr(exe, '/');
			if (!slash)
				break;
			*slash = '\0';
		}
		char alt[8192];
		snprintf(alt, sizeof(alt), "%s/%s", exe, DEFAULT_BZIMAGE);
		if (strlen(alt) < n && access(alt, F_OK) == 0)
			memcpy(out, alt, strlen(alt) + 1);
	}
}

static int group_setup(void **state)
{
	(void)state;
	find_image(img.path, sizeof(img.path));
	FILE *f = fopen(img.path, "rb");
	if (!f)
		return 0; /* each test skips */
	if (fseek(f, 0, SEEK_END) != 0) {
		fclose(f);
		return -1;
	}
	long sz = ftell(f);
	rewind(f);
	if (sz <= 0) {
		fclose(f);
		return -1;
	}
	img.len = (size_t)sz;
	img.buf = malloc(img.len);
	if (!img.buf || fread(img.buf, 1, img.len, f) != img.len) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(img.buf);
	img.buf = NULL;
	return 0;
}

static void need_image(void)
{
	if (!img.buf) {
		print_message("[   INFO   ] %s absent (run scripts/fetch-kernel.sh): skipped\n",
			      img.path);
		skip();
	}
}

static void parse_ok(struct bzimage_header *h)
{
	char err[256] = "";
	memset(h, 0, sizeof(*h));
	int rc = bzimage_parse_header(img.buf, img.len, h, err, sizeof(err));
	if (rc != 0)
		print_message("bzimage_parse_header(%s): %s\n", img.path, err);
	assert_int_equal(rc, 0);
}

/* The protocol facts the VMM relies on to boot this image. */
static void test_real_header_is_bootable(void **state)
{
	(void)state;
	need_image();
	struct bzimage_header h;
	parse_ok(&h);

	assert_true(h.version >= 0x20f);
	assert_true(h.xloadflags & XLF_KERNEL_64);
	unsigned sects = h.setup_sects ? h.setup_sects : 4;
	assert_int_equal(h.protected_mode_offset, ((uint64_t)sects + 1) * 512);
	assert_true(h.payload_length > 0);
	assert_true((uint64_t)h.protected_mode_offset + h.payload_offset + h.payload_length <=
		    img.len);
	assert_true(h.relocatable_kernel);
	assert_true(h.kernel_alignment != 0);
	assert_int_equal(h.kernel_alignment & (h.kernel_alignment - 1), 0);
	assert_true(h.init_size > img.len - h.protected_mode_offset);
	assert_true(h.cmdline_size >= 255);
}

/* Field by field against raw reads at the documented offsets. */
static void test_real_header_matches_raw_bytes(void **state)
{
	(void)state;
	need_image();
	struct bzimage_header h;
	parse_ok(&h);
	const uint8_t *b = img.buf;

	assert_memory_equal(b + 0x202, "HdrS", 4);
	assert_int_equal(h.setup_sects, b[0x1f1]); /* as in the file */
	unsigned sects = b[0x1f1] ? b[0x1f1] : 4;
	assert_int_equal(h.version, rd16(b, 0x206));
	assert_int_equal(h.syssize, rd32(b, 0x1f4));
	assert_int_equal(h.loadflags, b[0x211]);
	assert_int_equal(h.initrd_addr_max, rd32(b, 0x22c));
	assert_int_equal(h.kernel_alignment, rd32(b, 0x230));
	assert_int_equal(h.relocatable_kernel, b[0x234]);
	assert_int_equal(h.xloadflags, rd16(b, 0x236));
	assert_int_equal(h.cmdline_size, rd32(b, 0x238));
	assert_int_equal(h.payload_offset, rd32(b, 0x248));
	assert_int_equal(h.payload_length, rd32(b, 0x24c));
	assert_int_equal(h.pref_address, rd64(b, 0x258));
	assert_int_equal(h.init_size, rd32(b, 0x260));
	assert_int_equal(h.protected_mode_offset, (sects + 1) * 512);
}

struct kv {
	char key[64];
	unsigned long long val;
};

/* key=value lines from the extractor; returns the count or -1. */
static int read_header_values(FILE *f, struct kv *kv, int max)
{
	char line[256];
	int n = 0;
	while (n < max && fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');
		if (!eq || (size_t)(eq - line) >= sizeof(kv[n].key))
			continue;
		*eq = '\0';
		char *end;
		errno = 0;
		unsigned long long v = strtoull(eq + 1, &end, 0);
		if (errno || end == eq + 1)
			continue; /* e.g. compression=lz4 */
		memcpy(kv[n].key, line, (size_t)(eq - line) + 1); /* with the NUL */
		kv[n].val = v;
		n++;
	}
	return n;
}

static int lookup(const struct kv *kv, int n, const char *key, unsigned long long *out)
{
	for (int i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0) {
			*out = kv[i].val;
			return 0;
		}
	return -1;
}

/* Against what scripts/extract-vmlinux.py reads. */
static void test_real_header_matches_extractor(void **state)
{
	(void)state;
	need_image();
	struct bzimage_header h;
	parse_ok(&h);

	struct kv kv[64];
	int n = -1;
	char hdr[4200];
	snprintf(hdr, sizeof(hdr), "%s.header", img.path);
	FILE *f = fopen(hdr, "r");
	if (f) {
		n = read_header_values(f, kv, 64);
		fclose(f);
	} else {
		/* Not fetched by fetch-kernel.sh: ask the extractor directly. */
		char cmd[8400];
		snprintf(cmd, sizeof(cmd), "python3 scripts/extract-vmlinux.py --header '%s'",
			 img.path);
		f = popen(cmd, "r");
		assert_non_null(f);
		n = read_header_values(f, kv, 64);
		int rc = pclose(f);
		if (rc != 0)
			print_message("%s: exit %d (run from the repo root)\n", cmd, rc);
		assert_int_equal(rc, 0);
	}
	assert_true(n >= 12);

	static const char *const keys[] = {
		"version",        "setup_sects",        "xloadflags",     "pref_address",
		"init_size",      "cmdline_size",       "initrd_addr_max", "kernel_alignment",
		"relocatable_kernel", "payload_offset", "payload_length", "protected_mode_offset",
		"loadflags",      "syssize",
	};
	const unsigned long long got[] = {
		h.version,          h.setup_sects,        h.xloadflags,      h.pref_address,
		h.init_size,        h.cmdline_size,       h.initrd_addr_max, h.kernel_alignment,
		h.relocatable_kernel, h.payload_offset,   h.payload_length,  h.protected_mode_offset,
		h.loadflags,        h.syssize,
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		unsigned long long want;
		if (lookup(kv, n, keys[i], &want) != 0)
			fail_msg("extractor did not report %s", keys[i]);
		if (got[i] != want)
			fail_msg("%s: parser %#llx, extractor %#llx", keys[i], got[i], want);
	}
}

/* The payload the header points at starts with a compression magic the
 * extractor knows (Debian's cloud kernel: lz4). */
static void test_real_payload_has_known_magic(void **state)
{
	(void)state;
	need_image();
	struct bzimage_header h;
	parse_ok(&h);
	const uint8_t *p = img.buf + h.protected_mode_offset + h.payload_offset;
	static const struct {
		const char *name;
		const char *magic;
		size_t len;
	} magics[] = {
		{"gzip", "\x1f\x8b", 2},         {"xz", "\xfd" "7zXZ\0", 6},
		{"zstd", "\x28\xb5\x2f\xfd", 4}, {"lz4", "\x02\x21\x4c\x18", 4},
		{"bzip2", "BZh", 3},             {"lzo", "\x89LZO", 4},
		{"lzma", "\x5d\0\0", 3},
	};
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (memcmp(p, magics[i].magic, magics[i].len) == 0)
			return;
	fail_msg("payload at %#llx starts %02x %02x %02x %02x: no known magic",
		 (unsigned long long)(h.protected_mode_offset + h.payload_offset), p[0], p[1],
		 p[2], p[3]);
}

/* The real header with the buffer cut short, or its signature broken, is
 * refused with a message rather than read past the end. */
static void test_real_header_damaged_is_refused(void **state)
{
	(void)state;
	need_image();
	struct bzimage_header h;
	char err[256];

	static const size_t cuts[] = {0, 1, 0x1f1, 0x200, 0x205};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		err[0] = '\0';
		uint8_t *copy = malloc(cuts[i] ? cuts[i] : 1);
		assert_non_null(copy);
		memcpy(copy, img.buf, cuts[i]);
		assert_int_not_equal(bzimage_parse_header(copy, cuts[i], &h, err, sizeof(err)), 0);
		assert_true(err[0] != '\0');
		free(copy);
	}

	uint8_t *copy = malloc(img.len);
	assert_non_null(copy);
	memcpy(copy, img.buf, img.len);
	copy[0x202] = 'X';
	err[0] = '\0';
	assert_int_not_equal(bzimage_parse_header(copy, img.len, &h, err, sizeof(err)), 0);
	assert_true(err[0] != '\0');
	free(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_header_is_bootable),
		cmocka_unit_test(test_real_header_matches_raw_bytes),
		cmocka_unit_test(test_real_header_matches_extractor),
		cmocka_unit_test(test_real_payload_has_known_magic),
		cmocka_unit_test(test_real_header_damaged_is_refused),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
