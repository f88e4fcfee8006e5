/*
 * Comma-separated option lists, as --disk, --net and --balloon take them:
 * "opt[,opt]...", each option "key" or "key=value". One walker, so that
 * every flag splits options the same way and refuses the same malformed
 * lists (",,", a trailing comma) with the same words. Pure: no I/O.
 */
#ifndef VMM_OPTLIST_H
#define VMM_OPTLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* One option of a list; none of these strings is terminated. */
struct opt_item {
	const char *text; /* the whole option, len bytes */
	size_t len;
	size_t klen;	 /* the key: text[0..klen), up to the first '=' */
	const char *val; /* after the '=', vlen bytes; NULL when there is none */
	size_t vlen;
};

/* Applies one option; false with the reason in why. */
typedef bool (*opt_apply_fn)(const struct opt_item *o, void *ctx, char *why, size_t why_size);

/* Calls apply for each option of list in order, stopping at the first that
 * fails. An empty option (an empty list, ",," or a trailing comma) is
 * refused as "empty option". Returns false with the reason in why. */
bool optlist_parse(const char *list, opt_apply_fn apply, void *ctx, char *why, size_t why_size);

/* Records bit in *seen; false with "'KEY' given twice" in why when it was
 * already there (a flag's options may each be given once). */
bool optlist_once(const struct opt_item *o, unsigned *seen, unsigned bit, char *why,
		  size_t why_size);

/* The option's key, or its value, is exactly lit. */
static inline bool opt_key_is(const struct opt_item *o, const char *lit)
{
	return o->klen == strlen(lit) && memcmp(o->text, lit, o->klen) == 0;
}

static inline bool opt_val_is(const struct opt_item *o, const char *lit)
{
	return o->val && o->vlen == strlen(lit) && memcmp(o->val, lit, o->vlen) == 0;
}

#endif
