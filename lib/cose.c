/* cose.c - placeholder, implementation in progress. */
#include "cloister/cose.h"
