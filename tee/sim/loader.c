/*
 * loader.c - measuring, signing and loading a core image for the simulated
 * platform (HOST SIDE).
 *
 * Measurement (like the EADD/EEXTEND log of SGX, simplified): MRENCLAVE =
 * SHA-256(CL_SIM_MRENCLAVE_TAG || u64le(n) || segments) where segments is,
 * for each PT_LOAD program header in file order, u64le p_vaddr || u64le
 * p_memsz || u32le p_flags || the p_filesz bytes of the file, and n its
 * length. Only what gets mapped counts: stripping symbols does not change
 * MRENCLAVE, changing code, data or permissions does. The ELF is a file the
 * host controls, so every header field is bounds-checked before use.
 *
 * Signature (<image>.sig, CL_SIM_SIG_* in tee_sim.h, made by
 * cloister-sim-sign): like SIGSTRUCT it names MRENCLAVE, ISVPRODID, ISVSVN
 * and the DEBUG attribute, and carries the signer's public key (MRSIGNER =
 * SHA-256 of its 65 bytes) and an ECDSA signature over the rest.
 *
 * Loading: the image is opened once; the bytes measured are read from that
 * descriptor and dlopen() maps the same file through /proc/self/fd, so a
 * file swapped at the path between measuring and mapping is not what gets
 * loaded. (The sim is still insecure: the host can change the mapped pages.)
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cloister/bytes.h"
#include "cloister/crypto.h"
#include "sim_internal.h"

#define IMAGE_MAX (512u * 1024u * 1024u)
#define EHDR_LEN 64
#define PHDR_LEN 56
#define PT_LOAD_TYPE 1

struct cl_sim_enclave {
    void *dl;
    const cl_core_ecalls_t *ecalls;
    cl_sim_identity_t id;
};

/* ------------------------------------------------------------------ */
/* Measurement                                                         */
/* ------------------------------------------------------------------ */

cl_status_t sim_measure_buf(const uint8_t *img, size_t len, uint8_t mr_enclave[32])
{
    static const uint8_t magic[4] = {0x7f, 'E', 'L', 'F'};
    uint64_t phoff, total = 0;
    uint16_t phentsize, phnum, loads = 0;
    uint8_t rec[20];
    EVP_MD_CTX *md = NULL;
    cl_status_t rc = CL_FAIL(CL_ERR_BAD_INPUT);

    /* ELF64, little-endian, current version, with program headers in the file */
    if (img == NULL || len < EHDR_LEN || memcmp(img, magic, 4) != 0 || img[4] != 2 ||
        img[5] != 1 || img[6] != 1)
        return rc;
    phoff = cl_get_le64(img + 32);
    phentsize = cl_get_le16(img + 54);
    phnum = cl_get_le16(img + 56);
    if (phentsize != PHDR_LEN || phnum == 0 || phoff > len ||
        (uint64_t)phnum * PHDR_LEN > len - phoff)
        return rc;
    /* first pass: validate every PT_LOAD and compute n */
    for (uint16_t i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (uint64_t)i * PHDR_LEN;
        uint64_t off = cl_get_le64(ph + 8), filesz = cl_get_le64(ph + 32),
                 memsz = cl_get_le64(ph + 40);
        if (cl_get_le32(ph) != PT_LOAD_TYPE)
            continue;
        if (off > len || filesz > len - off || filesz > memsz)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        total += sizeof rec + filesz;
        loads++;
    }
    if (loads == 0)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    md = EVP_MD_CTX_new();
    cl_put_le64(rec, total);
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, CL_SIM_MRENCLAVE_TAG, strlen(CL_SIM_MRENCLAVE_TAG)) != 1 ||
        EVP_DigestUpdate(md, rec, 8) != 1) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    for (uint16_t i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (uint64_t)i * PHDR_LEN;
        uint64_t off = cl_get_le64(ph + 8), filesz = cl_get_le64(ph + 32);
        if (cl_get_le32(ph) != PT_LOAD_TYPE)
            continue;
        cl_put_le64(rec, cl_get_le64(ph + 16));     /* p_vaddr */
        cl_put_le64(rec + 8, cl_get_le64(ph + 40)); /* p_memsz */
        cl_put_le32(rec + 16, cl_get_le32(ph + 4)); /* p_flags */
        if (EVP_DigestUpdate(md, rec, sizeof rec) != 1 ||
            EVP_DigestUpdate(md, img + off, (size_t)filesz) != 1) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
    }
    if (EVP_DigestFinal_ex(md, mr_enclave, NULL) != 1) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    rc = CL_OK;
done:
    EVP_MD_CTX_free(md);
    return rc;
}

/* Reads the image from an open descriptor (regular file, bounded size). */
static cl_status_t read_fd(int fd, uint8_t **buf, size_t *len)
{
    struct stat st;
    uint8_t *b;
    size_t got = 0;

    *buf = NULL;
    *len = 0;
    if (fstat(fd, &st) != 0)
        return CL_FAIL(CL_ERR_PERSIST);
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size > IMAGE_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    b = malloc((size_t)st.st_size + 1);
    if (b == NULL)
        return CL_FAIL(CL_ERR_FULL);
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(b);
            return CL_FAIL(CL_ERR_PERSIST);
        }
        got += (size_t)n;
    }
    *buf = b;
    *len = got;
    return CL_OK;
}

static cl_status_t measure_fd(int fd, uint8_t mr_enclave[32])
{
    uint8_t *img = NULL;
    size_t len = 0;
    cl_status_t rc = read_fd(fd, &img, &len);

    if (rc == CL_OK)
        rc = sim_measure_buf(img, len, mr_enclave);
    free(img);
    return rc;
}

cl_status_t cl_sim_measure(const char *image_path, uint8_t mr_enclave[32])
{
    int fd;
    cl_status_t rc;

    if (image_path == NULL || mr_enclave == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    fd = open(image_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return CL_FAIL(errno == ENOENT ? CL_ERR_NOT_FOUND : CL_ERR_PERSIST);
    rc = measure_fd(fd, mr_enclave);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Signature file                                                      */
/* ------------------------------------------------------------------ */

cl_status_t cl_sim_sign(const char *image_path, const char *key_pem_path, uint16_t isv_prod_id,
                        uint16_t isv_svn, bool debug, uint8_t sig[CL_SIM_SIG_LEN])
{
    uint8_t mre[32], pub[65];
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    EVP_PKEY *key = NULL;
    cl_status_t rc;

    if (image_path == NULL || key_pem_path == NULL || sig == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    rc = cl_sim_measure(image_path, mre);
    if (rc != CL_OK)
        return rc;
    /* the shipped signer key is public test material: its file mode is not checked */
    rc = sim_read_file(key_pem_path, false, SIM_FILE_MAX, &pem, &pem_len);
    if (rc != CL_OK)
        return rc;
    rc = sim_pem_private(pem, pem_len, &key);
    sim_free_file(pem, pem_len);
    if (rc != CL_OK)
        return rc;
    rc = sim_p256_pub(key, pub);
    if (rc != CL_OK)
        goto done;
    memset(sig, 0, CL_SIM_SIG_LEN);
    memcpy(sig, CL_SIM_SIG_MAGIC, 8);
    cl_put_le16(sig + 8, CL_SIM_SIG_VERSION);
    memcpy(sig + 12, mre, 32);
    cl_put_le16(sig + 44, isv_prod_id);
    cl_put_le16(sig + 46, isv_svn);
    cl_put_le64(sig + 52, debug ? CL_SGX_FLAGS_DEBUG : 0);
    memcpy(sig + 60, pub, 65);
    rc = sim_ecdsa_sign(key, sig, CL_SIM_SIG_BODY_LEN, sig + CL_SIM_SIG_BODY_LEN);
done:
    EVP_PKEY_free(key);
    return rc;
}

/* Checks a signature file against a measured MRENCLAVE and fills the identity. */
static cl_status_t check_sig(const char *image_path, const uint8_t measured[32],
                             cl_sim_identity_t *id)
{
    char path[PATH_MAX];
    uint8_t *sig = NULL;
    size_t len = 0;
    uint64_t flags;
    cl_status_t rc;

    if (snprintf(path, sizeof path, "%s.sig", image_path) >= (int)sizeof path)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    rc = sim_read_file(path, false, CL_SIM_SIG_LEN, &sig, &len);
    if (rc == CL_ERR_BAD_INPUT || (rc == CL_OK && len != CL_SIM_SIG_LEN)) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (rc != CL_OK)
        goto done;
    flags = cl_get_le64(sig + 52);
    if (memcmp(sig, CL_SIM_SIG_MAGIC, 8) != 0 || cl_get_le16(sig + 8) != CL_SIM_SIG_VERSION ||
        cl_get_le16(sig + 10) != 0 || cl_get_le32(sig + 48) != 0 ||
        (flags & ~CL_SGX_FLAGS_DEBUG) != 0 || sig[125] != 0 || sig[126] != 0 || sig[127] != 0) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    rc = sim_ecdsa_verify(sig + 60, sig, CL_SIM_SIG_BODY_LEN, sig + CL_SIM_SIG_BODY_LEN);
    if (rc != CL_OK)
        goto done;
    /* the signer vouches for this measurement; the file must be that image */
    if (memcmp(sig + 12, measured, 32) != 0) {
        rc = CL_FAIL(CL_ERR_AUTH);
        goto done;
    }
    memset(id, 0, sizeof *id);
    memcpy(id->mr_enclave, measured, 32);
    if (EVP_Digest(sig + 60, 65, id->mr_signer, NULL, EVP_sha256(), NULL) != 1) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    id->isv_prod_id = cl_get_le16(sig + 44);
    id->isv_svn = cl_get_le16(sig + 46);
    id->attr_flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT | flags;
    id->attr_xfrm = 0x3;
done:
    free(sig);
    return rc;
}

cl_status_t cl_sim_read_sigstruct(const char *image_path, cl_sim_identity_t *id)
{
    uint8_t mre[32];
    cl_status_t rc;

    if (image_path == NULL || id == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    rc = cl_sim_measure(image_path, mre);
    if (rc != CL_OK)
        return rc;
    return check_sig(image_path, mre, id);
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

cl_status_t cl_sim_enclave_load(const char *image_path, cl_sim_enclave_t **out)
{
    typedef const cl_core_ecalls_t *(*entry_fn)(void);
    char fdpath[64];
    uint8_t mre[32];
    cl_sim_enclave_t *e = NULL;
    const cl_core_ecalls_t *t;
    entry_fn entry;
    void *sym;
    int fd = -1;
    cl_status_t rc;

    if (out != NULL)
        *out = NULL;
    if (image_path == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    fd = open(image_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return CL_FAIL(errno == ENOENT ? CL_ERR_NOT_FOUND : CL_ERR_PERSIST);
    e = calloc(1, sizeof *e);
    if (e == NULL) {
        rc = CL_FAIL(CL_ERR_FULL);
        goto done;
    }
    rc = measure_fd(fd, mre);
    if (rc != CL_OK)
        goto done;
    rc = check_sig(image_path, mre, &e->id);
    if (rc != CL_OK)
        goto done;
    memcpy(e->id.cpu_svn, CL_SIM_CPU_SVN, sizeof e->id.cpu_svn);
    /* map the file that was measured, not whatever is at the path now */
    (void)snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    /* RTLD_NODELETE: the image stays mapped after dlclose (as an enclave stays
     * resident until its process ends), so leak reports at exit can still
     * symbolize frames inside it (LeakSanitizer crashes on unmapped code). */
    e->dl = dlopen(access(fdpath, R_OK) == 0 ? fdpath : image_path,
                   RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (e->dl == NULL) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    sym = dlsym(e->dl, CL_CORE_ENTRY_SYMBOL);
    if (sym == NULL) {
        rc = CL_FAIL(CL_ERR_NOT_FOUND);
        goto done;
    }
    memcpy(&entry, &sym, sizeof entry); /* object -> function pointer, as POSIX allows */
    t = entry();
    if (t == NULL || t->version != CL_CORE_API_VERSION) {
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto done;
    }
    if (t->open == NULL || t->handle == NULL || t->tick == NULL || t->attest == NULL ||
        t->close == NULL) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    e->ecalls = t;
    *out = e;
    e = NULL;
done:
    if (fd >= 0)
        close(fd);
    cl_sim_enclave_unload(e);
    return rc;
}

const cl_core_ecalls_t *cl_sim_enclave_ecalls(const cl_sim_enclave_t *e)
{
    return e != NULL ? e->ecalls : NULL;
}

const cl_sim_identity_t *cl_sim_enclave_identity(const cl_sim_enclave_t *e)
{
    return e != NULL ? &e->id : NULL;
}

void cl_sim_enclave_unload(cl_sim_enclave_t *e)
{
    if (e == NULL)
        return;
    if (e->dl != NULL)
        dlclose(e->dl);
    free(e);
}
