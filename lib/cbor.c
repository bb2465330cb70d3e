/* cbor.c - placeholder, implementation in progress. */
#include "cloister/cbor.h"
