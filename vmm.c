/*
 * vmm: a minimal microVM monitor on Linux KVM.
 *
 * main() gathers the configuration (command line, --config-file), starts
 * the control API if asked (--api-sock), boots the VM at once when a
 * kernel is configured (otherwise the API's InstanceStart does), and runs
 * the event loop on the main thread until something asks the VM to stop.
 * The exit status says why. `vmm ctl ...` is the API's client.
 */
#include <string.h>

#include "api/api.h"
#include "api/backend.h"
#include "api/config_json.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "module.h"
#include "seccomp/sandbox.h"
#include "vmm.h"

/* Command line, then the config file on top of it. Returns 0 or the
 * status to exit with (-1: exit 0, --help or --version). */
static int configure(int argc, char **argv, struct vm_config *cfg)
{
	cli_defaults(cfg);
	switch (cli_parse(argc, argv, cfg, stdout, stderr)) {
	case CLI_DONE:
		return -1;
	case CLI_ERROR:
		return VMM_EXIT_USAGE;
	case CLI_RUN:
		break;
	}
	struct cfg_err err;
	if (cfg->config_file && !cfgjson_load_file(cfg->config_file, cfg, &err)) {
		vmm_err("--config-file %s", err.msg);
		return VMM_EXIT_USAGE;
	}
	vm_config_name_devices(cfg);
	int rc = modules_configure(cfg); /* a restore reads its configuration */
	if (rc)
		return rc;
	/* A module that starts the VM from saved state needs no kernel. */
	bool saved = modules_start_owner(cfg) != NULL;
	char why[256];
	if (!cfg->kernel && !cfg->api_sock && !saved) {
		vmm_err(
		    "--kernel is required (or --config-file FILE, or --api-sock PATH to configure "
		    "through the API; see --help)");
		return VMM_EXIT_USAGE;
	}
	if ((cfg->kernel && !saved && !vm_config_bootable(cfg, why, sizeof(why))) ||
	    ((cfg->kernel || saved) && !vm_devices_supported(cfg, why, sizeof(why)))) {
		vmm_err("%s", why);
		return VMM_EXIT_USAGE;
	}
	return cfg->kernel || saved ? modules_check(cfg) : 0;
}

/* Everything after the configuration: the API, the boot, the loop. */
static int run(struct vm *vm, struct vm_config *cfg)
{
	struct api_ctx ctx;
	struct api_server *server = NULL;
	struct sandbox sb;
	int status = vm_prepare(vm); /* before any thread: signals */
	/* Before any thread too: each one enters its sandbox as it starts. */
	if (!status && !(status = sandbox_init(&sb, cfg)))
		vm->sandbox = &sb;
	api_ctx_init(&ctx, cfg, &vm_api_ops, vm, &vm->loop);
	if (!status && api_ctx_apply_startup(&ctx) < 0)
		status = VMM_EXIT_RESOURCE;
	if (!status && cfg->api_sock && !(server = api_server_start(cfg->api_sock, &ctx, &sb)))
		status = VMM_EXIT_RESOURCE;
	const struct vmm_module *owner = modules_start_owner(cfg);
	if (!status && owner)
		status = owner->start(vm, cfg);
	else if (!status && cfg->kernel)
		status = vm_boot(vm);
	else if (!status)
		vm_prewarm(vm); /* InstanceStart or a snapshot load comes later */
	if (!status)
		status = vm_run(vm);
	api_server_stop(server);
	api_ctx_destroy(&ctx);
	if (vm->sandbox)
		sandbox_destroy(&sb);
	vm->sandbox = NULL;
	return status;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return api_client_main(argc - 1, argv + 1);
	const struct vmm_module *cmd = argc > 1 ? modules_command(argv[1]) : NULL;
	if (cmd)
		return cmd->command_main(argc - 1, argv + 1);
	struct vm_config cfg;
	int status = configure(argc, argv, &cfg);
	if (status == 0) {
		static struct vm vm; /* large (vCPU table); keep it off the stack */
		vm_init_struct(&vm, &cfg);
		status = run(&vm, &cfg);
		vm_teardown(&vm);
	}
	vm_config_free(&cfg);
	return status < 0 ? 0 : status;
}
