/*
 * cloister/tee_sim.h - the simulated SGX platform (tee/sim). HOST SIDE.
 *
 * INSECURE BY DESIGN: the platform secret, the attestation key and the PCK
 * key live in files the host can read. The simulation is faithful in its
 * byte layouts (reports, key requests, sealed blobs, DCAP quote v3) so that
 * everything above it runs unchanged on real SGX; it proves nothing.
 *
 * Pieces, each mirroring a real SGX component:
 *   platform  - EREPORT / EGETKEY / RDRAND for one loaded enclave: keys are
 *               AES-CMAC(platform secret, derivation data) as in the SGX SDK
 *               simulation (sdk/simulation/tinst/deriv.cpp), the secret a
 *               random 16-byte file (0600) in the platform directory.
 *   loader    - loads the core image (a shared object, like enclave.so):
 *               MRENCLAVE = SHA-256("SIMTEE-MRENCLAVE-v1" || u64le(len) ||
 *               segments), len = byte length of `segments`, which is, for
 *               every PT_LOAD program header in file order, u64le p_vaddr ||
 *               u64le p_memsz || u32le p_flags || the p_filesz file bytes
 *               (so debug info and symbol tables do not count); reads the image's
 *               SIGSTRUCT-like signature file (<image>.sig, made at build time
 *               by cloister-sim-sign with the shipped sim signer key):
 *               MRSIGNER = SHA-256(signer public key), ISVPRODID, ISVSVN,
 *               DEBUG; refuses an image whose measurement does not match its
 *               signature.
 *   qe        - the quoting enclave: checks the report's MAC (report key of
 *               the QE), signs header || body with the attestation key,
 *               appends the QE report signed by the PCK key and certification
 *               data type 5: PEM chain PCK -> sim intermediate -> "INSECURE
 *               SIMULATED TEE ROOT - DO NOT TRUST" (tee/sim/pki/, shipped).
 */
#ifndef CLOISTER_TEE_SIM_H
#define CLOISTER_TEE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"
#include "cloister/status.h"
#include "cloister/tee.h"

#ifdef __cplusplus
extern "C" {
#endif

/** QE vendor id of the simulation ("CLOISTER SIM QE" UUID; never Intel's). */
extern const uint8_t CL_SIM_VENDOR_ID[16];
/** Magic in the last 4 bytes of the quote header's user_data. */
#define CL_SIM_USER_DATA_MAGIC "SIM!"
/** Domain-separation tag of the simulated MRENCLAVE. */
#define CL_SIM_MRENCLAVE_TAG "SIMTEE-MRENCLAVE-v1"
/** Subject CN of the shipped simulated root. */
#define CL_SIM_ROOT_CN "INSECURE SIMULATED TEE ROOT - DO NOT TRUST"

/** ISVSVN of the simulated quoting enclave and PCE (quote header qe_svn / pce_svn). */
#define CL_SIM_QE_SVN 1
#define CL_SIM_PCE_SVN 1
/** ISVPRODID of the simulated QE (Intel's QE3 is 1 too). */
#define CL_SIM_QE_PROD_ID 1
/** The fixed CPUSVN of every simulated platform. */
extern const uint8_t CL_SIM_CPU_SVN[16];

/* Signature file <image>.sig (SIGSTRUCT-like), little-endian:
 *   0   8  magic "CLSIMSIG"       8  2  version (1)      10  2  reserved (0)
 *  12  32  MRENCLAVE             44  2  ISVPRODID        46  2  ISVSVN
 *  48   4  reserved (0)          52  8  ATTRIBUTES.flags (only DEBUG may be set)
 *  60  65  signer public key (P-256, 0x04 || x || y)    125 3  reserved (0)
 * 128  64  ECDSA-P256/SHA-256 signature (r || s, big-endian) over bytes [0,128)
 */
#define CL_SIM_SIG_MAGIC "CLSIMSIG"
#define CL_SIM_SIG_VERSION 1
#define CL_SIM_SIG_BODY_LEN 128
#define CL_SIM_SIG_LEN 192

/** Identity of a loaded enclave as EREPORT would report it. */
typedef struct cl_sim_identity {
    uint8_t mr_enclave[32];
    uint8_t mr_signer[32];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint64_t attr_flags; /**< INITTED | MODE64BIT (| DEBUG) */
    uint64_t attr_xfrm;
    uint8_t cpu_svn[16]; /**< the platform's */
} cl_sim_identity_t;

typedef struct cl_sim_platform cl_sim_platform_t;

/**
 * Opens (creating it on first use, mode 0700/0600) the simulated platform
 * directory: platform secret, attestation key, PCK key and certificate
 * (issued by the shipped sim intermediate). dir NULL = $CLOISTER_SIM_DIR or
 * ~/.local/share/cloister/sim-platform.
 */
cl_status_t cl_sim_platform_open(const char *dir, cl_sim_platform_t **out) CL_MUST_CHECK;
void cl_sim_platform_close(cl_sim_platform_t *p);

/**
 * A platform table (cl_tee_platform_t) for an enclave with this identity,
 * valid while p lives. The table's self is owned by p.
 */
cl_status_t cl_sim_platform_bind(cl_sim_platform_t *p, const cl_sim_identity_t *id,
                                 const cl_tee_platform_t **out) CL_MUST_CHECK;

/**
 * The quoting enclave: quote v3 for a report targeted at the QE (see
 * cl_tee_platform_t.get_report with target NULL). CL_ERR_AUTH if the report
 * MAC does not verify (not made on this platform).
 */
cl_status_t cl_sim_qe_quote(cl_sim_platform_t *p, const uint8_t *report, size_t report_len,
                            uint8_t *quote, size_t size, size_t *len) CL_MUST_CHECK;

/** PEM text of the shipped simulated root certificate (for verifiers). */
const char *cl_sim_root_pem(void);
/** PEM text of the shipped simulated intermediate (PCK platform CA) certificate. */
const char *cl_sim_intermediate_pem(void);

/**
 * Identity of the simulated quoting enclave (MRENCLAVE/MRSIGNER = SHA-256 of
 * fixed labels, ISVPRODID CL_SIM_QE_PROD_ID, ISVSVN CL_SIM_QE_SVN): what a
 * verifier expects in the quote's QE report body.
 */
void cl_sim_qe_identity(cl_sim_identity_t *id);

/* ---- loader / measurement ---- */

/** MRENCLAVE of a core image file (ELF loadable segments), as the loader computes it. */
cl_status_t cl_sim_measure(const char *image_path, uint8_t mr_enclave[32]) CL_MUST_CHECK;

/**
 * Builds the signature file body for an image and signs it with the P-256
 * private key in key_pem_path (what cloister-sim-sign writes to <image>.sig).
 */
cl_status_t cl_sim_sign(const char *image_path, const char *key_pem_path, uint16_t isv_prod_id,
                        uint16_t isv_svn, bool debug, uint8_t sig[CL_SIM_SIG_LEN]) CL_MUST_CHECK;

/**
 * Reads and checks <image>.sig: signature by the signer key over the
 * SIGSTRUCT-like body, body MRENCLAVE == measured; fills id (cpu_svn left 0).
 */
cl_status_t cl_sim_read_sigstruct(const char *image_path, cl_sim_identity_t *id) CL_MUST_CHECK;

typedef struct cl_sim_enclave cl_sim_enclave_t;

/**
 * Loads a core image: measures it, checks its signature, dlopen()s it and
 * resolves its ecall table. The enclave's identity is available through
 * cl_sim_enclave_identity.
 */
cl_status_t cl_sim_enclave_load(const char *image_path, cl_sim_enclave_t **out) CL_MUST_CHECK;
const cl_core_ecalls_t *cl_sim_enclave_ecalls(const cl_sim_enclave_t *e);
const cl_sim_identity_t *cl_sim_enclave_identity(const cl_sim_enclave_t *e);
void cl_sim_enclave_unload(cl_sim_enclave_t *e);

#ifdef __cplusplus
}
#endif
#endif
