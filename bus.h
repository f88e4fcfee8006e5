/*
 * Port-I/O and MMIO dispatch. Devices register [base, base+len) ranges
 * before the vCPUs start; the table is read-only afterwards, so lookups on
 * the vCPU threads take no lock. Handlers run on vCPU threads and must do
 * their own locking.
 */
#ifndef VMM_BUS_H
#define VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

/* offset is relative to the registered base. For reads the handler fills
 * data[0..len). Unclaimed reads return all-ones, unclaimed writes are
 * dropped, as on a real bus. */
typedef void (*bus_io_fn)(void *dev, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);

#define BUS_MAX_RANGES 64

struct bus_range {
	uint64_t base, len;
	bus_io_fn fn;
	void *dev;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	unsigned count;
	struct bus_range ranges[BUS_MAX_RANGES]; /* sorted by base */
};

void bus_init(struct bus *b, const char *name);
/* Returns 0, or -1 (message printed) on overlap or a full table. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn fn, void *dev,
		 const char *name);
/* Dispatch one access; returns false if no device claims addr. */
bool bus_access(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len,
		bool is_write);

#endif
