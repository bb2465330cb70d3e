/*
 * mcu/sizes.c - not linked anywhere: its objects' sizes ARE the figures.
 * Each array is as long as a structure is on the target with this build's
 * limits; scripts/mcu-footprint.sh reads them with `nm -S` from the
 * cross-compiled object (no target execution needed).
 */
#include "client.h"

#include "cloister/coap.h"

char sizeof_cl_edhoc_t[sizeof(cl_edhoc_t)];
char sizeof_cl_edhoc_config_t[sizeof(cl_edhoc_config_t)];
char sizeof_cl_oscore_ctx_t[sizeof(cl_oscore_ctx_t)];
char sizeof_cl_oscore_req_t[sizeof(cl_oscore_req_t)];
char sizeof_cl_coap_msg_t[sizeof(cl_coap_msg_t)];
char sizeof_cl_mcu_client_t[sizeof(cl_mcu_client_t)];
