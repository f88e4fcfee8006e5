/* The endpoint handlers (handlers.c); they run on the event loop thread. */
#ifndef VMM_API_HANDLERS_H
#define VMM_API_HANDLERS_H

#include "router.h"

#define API_HANDLER(name)                                                                          \
	void name(struct api_ctx *ctx, const struct api_request *req, struct api_response *resp)

API_HANDLER(h_get_instance);
API_HANDLER(h_get_version);
API_HANDLER(h_put_boot_source);
API_HANDLER(h_get_machine);
API_HANDLER(h_put_machine);
API_HANDLER(h_patch_machine);
API_HANDLER(h_put_drive);
API_HANDLER(h_patch_drive);
API_HANDLER(h_put_net);
API_HANDLER(h_patch_net);
API_HANDLER(h_put_actions);
API_HANDLER(h_patch_vm);
API_HANDLER(h_get_vm_config);
API_HANDLER(h_get_balloon);
API_HANDLER(h_put_balloon);
API_HANDLER(h_patch_balloon);
API_HANDLER(h_get_balloon_stats);
API_HANDLER(h_patch_balloon_stats);
API_HANDLER(h_get_vm_info);
API_HANDLER(h_put_logger);
API_HANDLER(h_put_metrics);
API_HANDLER(h_get_debug_memory);

#endif
