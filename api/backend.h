/* The API's view of the VMM: struct api_vmm_ops over struct vm. */
#ifndef VMM_API_BACKEND_H
#define VMM_API_BACKEND_H

#include "api.h"

/* Every op takes the struct vm as its opaque pointer. */
extern const struct api_vmm_ops vm_api_ops;

#endif
