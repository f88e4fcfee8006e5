/* XEN_ELFNOTE_PHYS32_ENTRY: linked into guest-pvh.elf only. */
#include "layout.h"

	.section .note.Xen, "a", @note
	.balign 4
	.long	4		/* namesz */
	.long	8		/* descsz */
	.long	18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.balign 4
	.quad	LOAD_ADDR	/* pvh_start */
	.balign 4

	.section .note.GNU-stack, "", @progbits
