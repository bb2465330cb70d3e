#ifndef CLOISTER_OSCORE_H
#define CLOISTER_OSCORE_H
#include "cloister/status.h"
#endif
