/* coap.c - placeholder, implementation in progress. */
#include "cloister/coap.h"
