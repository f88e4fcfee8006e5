/* Comma-separated option lists; see optlist.h. */
#include "optlist.h"

#include <stdio.h>

bool optlist_parse(const char *list, opt_apply_fn apply, void *ctx, char *why, size_t why_size)
{
	const char *p = list;
	do {
		struct opt_item o = {.text = p, .len = strcspn(p, ",")};
		if (o.len == 0) {
			snprintf(why, why_size, "empty option");
			return false;
		}
		const char *eq = memchr(p, '=', o.len);
		o.klen = eq ? (size_t)(eq - p) : o.len;
		if (eq) {
			o.val = eq + 1;
			o.vlen = o.len - o.klen - 1;
		}
		if (!apply(&o, ctx, why, why_size))
			return false;
		p += o.len;
	} while (*p++ == ',');
	return true;
}

bool optlist_once(const struct opt_item *o, unsigned *seen, unsigned bit, char *why,
		  size_t why_size)
{
	if (*seen & bit) {
		snprintf(why, why_size, "'%.*s' given twice", (int)o->klen, o->text);
		return false;
	}
	*seen |= bit;
	return true;
}
