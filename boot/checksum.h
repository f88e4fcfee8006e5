/* The 8-bit checksum both the MP spec and ACPI use: the byte that makes
 * all bytes of a structure (with it in place of a zero) sum to 0. */
#ifndef VMM_BOOT_CHECKSUM_H
#define VMM_BOOT_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

static inline uint8_t boot_checksum8(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return (uint8_t)(0u - sum);
}

#endif
