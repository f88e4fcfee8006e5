/*
 * The snapshot file format (modules/migration/snapfmt.c) against hostile
 * input: every truncation, every flipped byte, section lengths that lie
 * (with checksums recomputed so the framing itself is what is tested),
 * too many sections, random bytes; and the checks on top of the framing
 * (META, vCPU sections, the CPU identity).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <linux/kvm.h>

#include "modules/migration/mig.h"

#define MEM (64ULL << 20)

static struct snap_header proto(void)
{
	struct snap_header h = {0};
	memcpy(h.cpu.vendor, "GenuineIntel", 12);
	h.cpu.signature = 0x50654;
	h.cpu.features = 0x1234;
	h.mem_size = MEM;
	h.ncpus = 1;
	return h;
}

/* A sealed file of the given sections. */
static struct blob seal(const struct blob *sec, const struct snap_header *h)
{
	struct blob f;
	blob_init(&f);
	assert_true(snap_seal(sec, h, &f));
	return f;
}

static struct blob sample(void)
{
	struct blob sec;
	blob_init(&sec);
	struct snap_meta meta = {.mem_size = MEM, .ncpus = 1, .layers = 1};
	assert_true(snap_add(&sec, SEC_META, 0, &meta, sizeof(meta)));
	assert_true(snap_add(&sec, SEC_CONFIG, 0, "{}", 2));
	assert_true(snap_add(&sec, SEC_CLOCK, 0, "abcde", 5)); /* odd: padded */
	assert_true(snap_add(&sec, SEC_PIT, 0, NULL, 0));
	struct snap_header h = proto();
	struct blob f = seal(&sec, &h);
	blob_free(&sec);
	return f;
}

static int parse(const uint8_t *p, size_t len, char *why)
{
	struct snap_view v;
	int rc = snap_parse(p, len, &v, why, 256);
	if (rc == 0)
		snap_view_free(&v);
	return rc;
}

static void crc32c_known_answer(void **state)
{
	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
	/* Incremental: the same as in one go. */
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xe3069283);
	assert_int_equal(crc32c(0, "", 0), 0);
}

static void round_trip(void **state)
{
	(void)state;
	struct blob f = sample();
	struct snap_view v;
	char why[256];
	assert_int_equal(snap_parse(f.data, f.len, &v, why, sizeof(why)), 0);
	assert_int_equal(v.nsec, 4);
	assert_int_equal(v.hdr.version, SNAP_VERSION);
	assert_int_equal(v.hdr.mem_size, MEM);
	const struct snap_section *s = snap_find(&v, SEC_CLOCK, 0);
	assert_non_null(s);
	assert_int_equal(s->len, 5);
	assert_memory_equal(s->data, "abcde", 5);
	assert_non_null(snap_find(&v, SEC_PIT, 0));
	assert_null(snap_find(&v, SEC_PIT, 1));
	struct snap_meta meta;
	assert_int_equal(vm_state_check_meta(&v, &meta, why, sizeof(why)), 0);
	assert_int_equal(meta.layers, 1);
	snap_view_free(&v);
	blob_free(&f);
}

static void every_truncation_refused(void **state)
{
	(void)state;
	struct blob f = sample();
	char why[256];
	for (size_t len = 0; len < f.len; len++) {
		/* A copy of exactly len bytes, so ASan sees any read past it. */
		uint8_t *p = malloc(len ? len : 1);
		memcpy(p, f.data, len);
		assert_int_equal(parse(p, len, why), -1);
		assert_non_null(strstr(why, "truncated"));
		free(p);
	}
	blob_free(&f);
}

static void every_flipped_byte_refused(void **state)
{
	(void)state;
	struct blob f = sample();
	char why[256];
	for (size_t i = 0; i < f.len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			f.data[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(parse(f.data, f.len, why), -1);
			f.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_int_equal(parse(f.data, f.len, why), 0);
	blob_free(&f);
}

static void named_refusals(void **state)
{
	(void)state;
	struct blob f = sample();
	char why[256];
	f.data[0] = 'X';
	assert_int_equal(parse(f.data, f.len, why), -1);
	assert_non_null(strstr(why, "bad magic"));
	f.data[0] = 'V';
	uint32_t v2 = 2;
	memcpy(f.data + 8, &v2, 4);
	assert_int_equal(parse(f.data, f.len, why), -1);
	assert_non_null(strstr(why, "version 2 is not supported"));
	v2 = SNAP_VERSION;
	memcpy(f.data + 8, &v2, 4);
	f.data[f.len - 1] ^= 0x40;
	assert_int_equal(parse(f.data, f.len, why), -1);
	assert_non_null(strstr(why, "checksum mismatch"));
	f.data[f.len - 1] ^= 0x40;
	f.data[40] ^= 1; /* inside the header, past magic and version */
	assert_int_equal(parse(f.data, f.len, why), -1);
	assert_non_null(strstr(why, "corrupt header"));
	blob_free(&f);
}

/* A payload whose framing lies, sealed with valid checksums. */
static int parse_payload(const void *payload, size_t len, char *why)
{
	struct blob sec;
	blob_init(&sec);
	blob_put(&sec, payload, len);
	struct snap_header h = proto();
	struct blob f = seal(&sec, &h);
	uint8_t *exact = malloc(f.len);
	memcpy(exact, f.data, f.len);
	int rc = parse(exact, f.len, why);
	free(exact);
	blob_free(&f);
	blob_free(&sec);
	return rc;
}

static void lying_section_lengths(void **state)
{
	(void)state;
	char why[256];
	/* {claimed length, payload bytes}: 16 bytes of section header, then
	 * room for the rest. 13 bytes fit in 29, their padding does not. */
	struct {
		uint64_t len;
		size_t total;
	} lies[] = {{UINT64_MAX, 32}, {UINT64_MAX - 15, 32}, {1ULL << 63, 32}, {17, 32}, {13, 29},
		    {1, 20}};
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint8_t p[32] = {0};
		uint32_t type = SEC_CONFIG;
		memcpy(p, &type, 4);
		memcpy(p + 8, &lies[i].len, 8);
		assert_int_equal(parse_payload(p, lies[i].total, why), -1);
		assert_non_null(strstr(why, "more than the file holds"));
	}
	/* A header cut short. */
	uint8_t p[20] = {1};
	assert_int_equal(parse_payload(p, 12, why), -1);
	assert_non_null(strstr(why, "cut short"));
	/* An exact fit is fine: 16 bytes of data, no padding. */
	uint64_t sixteen = 16;
	memset(p, 0, sizeof(p));
	uint8_t q[32] = {0};
	memcpy(q + 8, &sixteen, 8);
	assert_int_equal(parse_payload(q, 32, why), 0);
}

static void too_many_sections(void **state)
{
	(void)state;
	struct blob sec;
	blob_init(&sec);
	for (int i = 0; i <= SNAP_MAX_SECTIONS; i++)
		snap_add(&sec, SEC_PIT, (uint32_t)i, NULL, 0);
	char why[256];
	assert_int_equal(parse_payload(sec.data, sec.len, why), -1);
	assert_non_null(strstr(why, "more than"));
	blob_free(&sec);
}

static void header_fields_checked(void **state)
{
	(void)state;
	struct blob sec;
	blob_init(&sec);
	char why[256];
	struct snap_header h = proto();
	h.ncpus = 0;
	struct blob f = seal(&sec, &h);
	assert_int_equal(parse(f.data, f.len, why), -1);
	assert_non_null(strstr(why, "corrupt header"));
	blob_free(&f);
	h = proto();
	h.mem_size = MEM + 1;
	f = seal(&sec, &h);
	assert_int_equal(parse(f.data, f.len, why), -1);
	blob_free(&f);
	blob_free(&sec);
}

static void random_bytes_never_crash(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char why[256];
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(x % 200);
		uint8_t *p = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			p[i] = (uint8_t)x;
		}
		/* Bare sections: no checksum stands in the way. */
		struct snap_view v;
		if (snap_parse_sections(p, len, &v, why, sizeof(why)) == 0) {
			for (size_t i = 0; i < v.nsec; i++)
				assert_true(v.sec[i].data + v.sec[i].len <= p + len);
			snap_view_free(&v);
		}
		assert_int_equal(parse(p, len, why), -1);
		free(p);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
	}
}

static void meta_checked(void **state)
{
	(void)state;
	char why[256];
	struct snap_meta bad[] = {
	    {.mem_size = MEM * 2, .ncpus = 1, .layers = 1}, /* not the header's */
	    {.mem_size = MEM, .ncpus = 2, .layers = 1},
	    {.mem_size = MEM, .ncpus = 1, .layers = 0},
	    {.mem_size = MEM, .ncpus = 1, .layers = MIG_MAX_LAYERS + 1},
	    {.mem_size = MEM, .ncpus = 1, .layers = 1, .nvirtio = 100},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct blob sec;
		blob_init(&sec);
		snap_add(&sec, SEC_META, 0, &bad[i], sizeof(bad[i]));
		snap_add(&sec, SEC_CONFIG, 0, "{}", 2);
		struct snap_header h = proto();
		struct blob f = seal(&sec, &h);
		struct snap_view v;
		struct snap_meta m;
		assert_int_equal(snap_parse(f.data, f.len, &v, why, sizeof(why)), 0);
		assert_int_equal(vm_state_check_meta(&v, &m, why, sizeof(why)), -1);
		snap_view_free(&v);
		blob_free(&f);
		blob_free(&sec);
	}
}

static void vcpu_sections_checked(void **state)
{
	(void)state;
	struct blob sec;
	blob_init(&sec);
	static uint8_t zero[8192];
	snap_add(&sec, SEC_VCPU_REGS, 0, zero, sizeof(struct kvm_regs));
	snap_add(&sec, SEC_VCPU_SREGS, 0, zero, sizeof(struct kvm_sregs));
	snap_add(&sec, SEC_VCPU_LAPIC, 0, zero, sizeof(struct kvm_lapic_state));
	snap_add(&sec, SEC_VCPU_MP_STATE, 0, zero, sizeof(struct kvm_mp_state));
	snap_add(&sec, SEC_VCPU_EVENTS, 0, zero, sizeof(struct kvm_vcpu_events));
	snap_add(&sec, SEC_VCPU_DEBUGREGS, 0, zero, sizeof(struct kvm_debugregs));
	snap_add(&sec, SEC_VCPU_MSRS, 0, zero, 3 * sizeof(struct kvm_msr_entry));
	snap_add(&sec, SEC_VCPU_CPUID, 0, zero, 2 * sizeof(struct kvm_cpuid_entry2));
	snap_add(&sec, SEC_VCPU_XSAVE, 0, zero, 4096);
	struct snap_view v;
	char why[256];
	assert_int_equal(snap_parse_sections(sec.data, sec.len, &v, why, sizeof(why)), 0);
	assert_int_equal(vcpu_state_check(&v, 0, 4096, why, sizeof(why)), 0);
	/* Another host's XSAVE size; a vCPU that is not there. */
	assert_int_equal(vcpu_state_check(&v, 0, 8192, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "XSAVE"));
	assert_int_equal(vcpu_state_check(&v, 1, 4096, why, sizeof(why)), -1);
	snap_view_free(&v);
	/* An MSR list that is not whole entries. */
	snap_add(&sec, SEC_VCPU_MSRS, 1, zero, 5);
	assert_int_equal(snap_parse_sections(sec.data, sec.len, &v, why, sizeof(why)), 0);
	assert_int_equal(vcpu_state_check(&v, 1, 4096, why, sizeof(why)), -1);
	snap_view_free(&v);
	blob_free(&sec);
}

static void cpu_identity(void **state)
{
	(void)state;
	struct cpu_ident a = {.signature = 0x50654, .features = 1}, b = a;
	memcpy(a.vendor, "GenuineIntel", 12);
	memcpy(b.vendor, "GenuineIntel", 12);
	char why[256];
	assert_true(cpu_ident_match(&a, &b, why, sizeof(why)));
	b.signature = 0x306f2;
	assert_false(cpu_ident_match(&a, &b, why, sizeof(why)));
	assert_non_null(strstr(why, "different CPU"));
	assert_non_null(strstr(why, "family 6 model 85"));
	b = a;
	memcpy(b.vendor, "AuthenticAMD", 12);
	assert_false(cpu_ident_match(&a, &b, why, sizeof(why)));
	b = a;
	b.features = 2;
	assert_false(cpu_ident_match(&a, &b, why, sizeof(why)));
	assert_non_null(strstr(why, "other features"));
}

/* Dirty bitmap runs: across word boundaries, cut at `max`, never past
 * `pages`, and none in an empty map. */
static void dirty_runs(void **state)
{
	(void)state;
	uint64_t bits[3] = {0}, p = 0, first, count;
	assert_false(dirty_next_run(bits, 192, UINT64_MAX, &p, &first, &count));
	bits[0] = 1ULL << 63; /* pages 63..66: a run over the word boundary */
	bits[1] = 0x7;
	bits[2] = ~0ULL; /* 128..191, but only 150 pages exist */
	p = 0;
	assert_true(dirty_next_run(bits, 150, UINT64_MAX, &p, &first, &count));
	assert_int_equal(first, 63);
	assert_int_equal(count, 4);
	assert_true(dirty_next_run(bits, 150, 16, &p, &first, &count));
	assert_int_equal(first, 128);
	assert_int_equal(count, 16); /* cut at max */
	assert_true(dirty_next_run(bits, 150, 16, &p, &first, &count));
	assert_int_equal(first, 144);
	assert_int_equal(count, 6); /* cut at pages */
	assert_false(dirty_next_run(bits, 150, 16, &p, &first, &count));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(crc32c_known_answer),
	    cmocka_unit_test(round_trip),
	    cmocka_unit_test(every_truncation_refused),
	    cmocka_unit_test(every_flipped_byte_refused),
	    cmocka_unit_test(named_refusals),
	    cmocka_unit_test(lying_section_lengths),
	    cmocka_unit_test(too_many_sections),
	    cmocka_unit_test(header_fields_checked),
	    cmocka_unit_test(random_bytes_never_crash),
	    cmocka_unit_test(meta_checked),
	    cmocka_unit_test(dirty_runs),
	    cmocka_unit_test(vcpu_sections_checked),
	    cmocka_unit_test(cpu_identity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
