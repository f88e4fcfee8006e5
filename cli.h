/* Command-line parsing into a struct vm_config. */
#ifndef VMM_CLI_H
#define VMM_CLI_H

#include <stdio.h>

#include "vmm.h"

#define DEFAULT_MEM_MIB 128
#define MIN_MEM_MIB 8
#define MAX_MEM_MIB (1024 * 1024) /* 1 TiB */
#define DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"
#define DISK_SYNTAX "PATH[,ro][,serial=ID][,cache=unsafe|writeback][,engine=sync|io_uring]"

enum cli_result {
	CLI_RUN,  /* boot with the parsed configuration */
	CLI_DONE, /* --help or --version was printed: exit 0 */
	CLI_ERROR /* a message naming the flag and value was printed */
};

void cli_defaults(struct vm_config *cfg);
/* Messages go to `err` (stderr in the VMM) and help/version to `out`. */
enum cli_result cli_parse(int argc, char **argv, struct vm_config *cfg, FILE *out, FILE *err);
void cli_usage(FILE *out);

#endif
