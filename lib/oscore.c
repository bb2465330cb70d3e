/* oscore.c - placeholder, implementation in progress. */
#include "cloister/oscore.h"
