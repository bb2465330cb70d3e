/* aes_ccm_aesni.c - placeholder, implementation in progress. */
#include "cloister/aes_ccm_aesni.h"
