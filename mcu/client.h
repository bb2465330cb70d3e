/*
 * mcu/client.h - a minimal EDHOC initiator + OSCORE client for a
 * microcontroller, written against two abstractions only:
 *
 *  - a crypto provider table (cl_crypto_t; on the device mcu/plat_crypto.h),
 *  - a transport (cl_mcu_transport_t): "send this CoAP request, give me the
 *    CoAP response to it" (CoAP/UDP with CON retransmission, a radio link,
 *    a serial line: the client does not care).
 *
 * Everything lives in one caller-allocated cl_mcu_client_t (a static object on
 * the device): EDHOC state, OSCORE context and the message buffers. No heap.
 *
 * The flow is the one the Cloister core serves (core/session.c):
 *   POST /.well-known/edhoc  true || message_1       -> 2.04 message_2
 *   POST /.well-known/edhoc  C_R  || message_3       -> 2.04 (message_4 optional)
 *   POST /events (OSCORE)    CBOR event             -> 2.01 / 2.04
 * EDHOC over CoAP as in RFC 9528 Appendix A.2, Content-Format 65
 * (application/cid-edhoc+cbor-seq), OSCORE context from Appendix A.1.
 */
#ifndef CLOISTER_MCU_CLIENT_H
#define CLOISTER_MCU_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/crypto.h"
#include "cloister/edhoc.h"
#include "cloister/oscore.h"
#include "cloister/status.h"

#ifndef CL_MCU_MSG_MAX
#define CL_MCU_MSG_MAX 256 /**< largest CoAP message sent or received (bytes) */
#endif

/** The link to the server: one CoAP request out, its response in. */
typedef struct cl_mcu_transport {
    /**
     * Sends req[0..req_len) and writes the response datagram into resp.
     * The client matches the token; retransmission, timeouts and addressing
     * are the transport's. Any status other than CL_OK ends the operation.
     */
    cl_status_t (*exchange)(void *arg, const uint8_t *req, size_t req_len, uint8_t *resp,
                            size_t resp_size, size_t *resp_len);
    void *arg;
} cl_mcu_transport_t;

/**
 * Who we are and whom we trust: our static DH credential (a key handle of the
 * platform's key store, the private key never leaves it) and the server's
 * pinned credential. Method 3 (static DH both ways) with cipher suite 2
 * (P-256, AES-CCM-16-64-128, SHA-256) is the constrained profile: no
 * signature code and no certificate parser on the device.
 */
typedef struct cl_mcu_identity {
    cl_edhoc_auth_t auth;        /**< ID_CRED_I, CRED_I, static DH key handle */
    const uint8_t *peer_id_cred; /**< the server's ID_CRED_R (map form, e.g. {4: kid}) */
    size_t peer_id_cred_len;
    const uint8_t *peer_cred; /**< CRED_R (the CCS the transcript covers) */
    size_t peer_cred_len;
    const uint8_t *peer_pub; /**< the server's static DH public key (65-byte SEC1) */
    size_t peer_pub_len;
    int method; /**< CL_EDHOC_METHOD_STAT_STAT */
    int suite;  /**< 2 */
} cl_mcu_identity_t;

/** All the client's state; put it in static storage. */
typedef struct cl_mcu_client {
    const cl_crypto_t *crypto;
    const cl_mcu_identity_t *id;
    cl_mcu_transport_t transport;
    cl_edhoc_config_t cfg;
    int suites[1];
    uint16_t mid;
    uint8_t token[4];
    cl_edhoc_t edhoc;
    cl_oscore_ctx_t oscore;
    cl_oscore_req_t req;
    uint8_t tx[CL_MCU_MSG_MAX];    /**< request on the wire */
    uint8_t rx[CL_MCU_MSG_MAX];    /**< response on the wire (decrypted in place) */
    uint8_t plain[CL_MCU_MSG_MAX]; /**< EDHOC message / plain CoAP request or response */
} cl_mcu_client_t;

/** Binds the client to its provider, identity and transport (no I/O). */
void cl_mcu_client_init(cl_mcu_client_t *c, const cl_crypto_t *crypto, const cl_mcu_identity_t *id,
                        const cl_mcu_transport_t *transport);

/**
 * Runs one EDHOC handshake as initiator (message_1 -> message_2 -> message_3,
 * message_4 if the server sends one) and derives the OSCORE context.
 * CL_ERR_PEER_ERROR: the server answered with an EDHOC error message.
 */
cl_status_t cl_mcu_client_handshake(cl_mcu_client_t *c) CL_MUST_CHECK;

/**
 * OSCORE-protected CON POST /events with a CBOR payload; verifies and
 * decrypts the response and returns its code (e.g. CL_COAP_CREATED) and
 * payload (pointing into c->plain, valid until the next call).
 */
cl_status_t cl_mcu_client_post_event(cl_mcu_client_t *c, const uint8_t *cbor, size_t cbor_len,
                                     uint8_t *code, const uint8_t **resp_payload,
                                     size_t *resp_payload_len) CL_MUST_CHECK;

/** Destroys the session keys and wipes the state. */
void cl_mcu_client_close(cl_mcu_client_t *c);

#endif
