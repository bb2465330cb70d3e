/*
 * cloister/config.h - compile-time limits of the portable library.
 *
 * Every limit that sizes a caller-allocated structure lives here, so that an
 * MCU build can shrink them with -D flags and a server build can grow them.
 * Nothing in lib/ allocates from the heap; these numbers are the memory.
 */
#ifndef CLOISTER_CONFIG_H
#define CLOISTER_CONFIG_H

/* ---- CBOR ---- */
#ifndef CL_CBOR_MAX_DEPTH
#define CL_CBOR_MAX_DEPTH 16 /**< max nesting of arrays/maps/tags when decoding */
#endif

/* ---- CoAP ---- */
#ifndef CL_COAP_MAX_OPTIONS
#define CL_COAP_MAX_OPTIONS 32 /**< options kept by the parser per message */
#endif
#ifndef CL_COAP_MAX_TOKEN
#define CL_COAP_MAX_TOKEN 8 /**< RFC 7252: token length 0..8 */
#endif

/* ---- crypto ---- */
#ifndef CL_AEAD_MAX_KEY
#define CL_AEAD_MAX_KEY 32
#endif
#ifndef CL_AEAD_MAX_NONCE
#define CL_AEAD_MAX_NONCE 13
#endif
#ifndef CL_AEAD_MAX_TAG
#define CL_AEAD_MAX_TAG 16
#endif

/* ---- COSE ---- */
#ifndef CL_COSE_MAX_STRUCTURE
#define CL_COSE_MAX_STRUCTURE 1024 /**< largest Enc_structure / Sig_structure built on the stack   \
                                    */
#endif

/* ---- OSCORE ---- */
#ifndef CL_OSCORE_MAX_ID
#define CL_OSCORE_MAX_ID 7 /**< Sender/Recipient ID: nonce length (13) - 6 */
#endif
#ifndef CL_OSCORE_MAX_ID_CONTEXT
#define CL_OSCORE_MAX_ID_CONTEXT 16
#endif
#ifndef CL_OSCORE_MAX_MASTER_SECRET
#define CL_OSCORE_MAX_MASTER_SECRET 32
#endif
#ifndef CL_OSCORE_MAX_MASTER_SALT
#define CL_OSCORE_MAX_MASTER_SALT 16
#endif
#ifndef CL_OSCORE_REPLAY_WINDOW
#define CL_OSCORE_REPLAY_WINDOW 64 /**< replay window width in sequence numbers (<= 64) */
#endif
#ifndef CL_OSCORE_SEQ_PERSIST_K
#define CL_OSCORE_SEQ_PERSIST_K 100 /**< B.1.1: persist the sender sequence number this far ahead  \
                                     */
#endif
#ifndef CL_OSCORE_ECHO_LEN
#define CL_OSCORE_ECHO_LEN 8 /**< B.1.2: bytes of the Echo challenge */
#endif
#ifndef CL_OSCORE_MAX_AAD
#define CL_OSCORE_MAX_AAD 96 /**< external_aad + Enc_structure buffer */
#endif

#endif
