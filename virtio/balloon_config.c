/* --balloon parsing; see balloon_config.h. */
#include "balloon_config.h"

#include <string.h>

#include "../cli.h"
#include "../optlist.h"

/* Strict decimal, digits only, at most max. */
static bool parse_num(const char *s, size_t len, uint64_t max, uint32_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

enum { SEEN_SIZE = 1, SEEN_OOM = 2, SEEN_STATS = 4, SEEN_REPORTING = 8 };

/* The option's bit, or 0 if it is not one we know. */
static unsigned option_bit(const struct opt_item *o)
{
	bool has_value = o->val != NULL;
	if (opt_key_is(o, "size") && has_value)
		return SEEN_SIZE;
	if (opt_key_is(o, "stats") && has_value)
		return SEEN_STATS;
	if (opt_key_is(o, "deflate_on_oom") && !has_value)
		return SEEN_OOM;
	if (opt_key_is(o, "free_page_reporting") && !has_value)
		return SEEN_REPORTING;
	return 0;
}

struct balloon_parse {
	struct balloon_config *c;
	unsigned seen;
};

/* One option of a --balloon value (an optlist_parse() callback). */
static bool apply_option(const struct opt_item *o, void *ctx, char *why, size_t why_size)
{
	struct balloon_parse *bp = ctx;
	struct balloon_config *c = bp->c;
	unsigned bit = option_bit(o);
	if (!bit) {
		snprintf(why, why_size, "unknown option '%.*s'", (int)o->len, o->text);
		return false;
	}
	if (!optlist_once(o, &bp->seen, bit, why, why_size))
		return false;
	if (bit == SEEN_SIZE && !parse_num(o->val, o->vlen, MAX_MEM_MIB, &c->amount_mib)) {
		snprintf(why, why_size, "bad size '%.*s' (MiB, 0..%d)", (int)o->vlen, o->val,
			 MAX_MEM_MIB);
		return false;
	}
	if (bit == SEEN_STATS &&
	    !parse_num(o->val, o->vlen, VMM_BALLOON_STATS_MAX_S, &c->stats_interval_s)) {
		snprintf(why, why_size, "bad stats interval '%.*s' (seconds, 0..%d)", (int)o->vlen,
			 o->val, VMM_BALLOON_STATS_MAX_S);
		return false;
	}
	c->deflate_on_oom |= bit == SEEN_OOM;
	c->free_page_reporting |= bit == SEEN_REPORTING;
	return true;
}

bool balloon_config_parse(const char *arg, struct balloon_config *c, char *why, size_t why_size)
{
	struct balloon_parse bp = {.c = c};
	memset(c, 0, sizeof(*c));
	if (!*arg) {
		snprintf(why, why_size, "empty value");
		return false;
	}
	if (!optlist_parse(arg, apply_option, &bp, why, why_size))
		return false;
	if (!(bp.seen & SEEN_SIZE)) {
		snprintf(why, why_size, "size=MIB is required");
		return false;
	}
	c->enabled = true;
	return true;
}

bool cli_parse_balloon(const char *arg, struct vm_config *cfg, FILE *err)
{
	char why[160];
	struct balloon_config c;
	if (cfg->balloon.enabled) {
		fprintf(err, "vmm: --balloon: given twice at '%s' (one balloon device at most)\n",
			arg);
		return false;
	}
	if (!balloon_config_parse(arg, &c, why, sizeof(why))) {
		fprintf(err, "vmm: --balloon: invalid value '%s' (%s; expected %s)\n", arg, why,
			BALLOON_SYNTAX);
		return false;
	}
	cfg->balloon = c;
	return true;
}
