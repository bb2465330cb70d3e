/* openssl.c - placeholder, implementation in progress. */
#include "cloister/crypto_openssl.h"
