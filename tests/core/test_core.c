/*
 * test_core.c - the trusted core end to end, through a TEE runtime (the
 * first argument: "sim" or "process"; ctest runs both), with the
 * lying-host fixture as its storage: attestation and owner binding,
 * claim/provision (and a hijacked core), EDHOC as owner, enrollment tokens
 * and enrollment (used, expired, forged), roles, events into the encrypted
 * archive (canary), revocation, restart (unseal + replay), and a host that
 * lies or fails at boot and on commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cloister/attest.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/json.h"
#include "cloister/runtime.h"
#include "cloister/tee_sim.h"
#include "core_client.h"
#include "lying_host.h"
#include "pki.h"
#include "scenario.h"

static cl_runtime_kind_t g_kind = CL_RUNTIME_SIM;
static const int64_t T0 = INT64_C(1800000000000); /* 2027-01-15 */

typedef struct world {
    char dir[64];
    lh_t *lh;
    cl_runtime_t *rt;
    cc_peer_t owner;
    uint8_t owner_cert[2048];
    size_t owner_len;
    uint8_t ca_cert[2048], id_cert[2048];
    size_t ca_len, id_len;
} world_t;

static cl_status_t rt_open_image(world_t *w, const char *image, uint16_t policy)
{
    cl_runtime_config_t cfg = {.kind = g_kind,
                               .core_image = image,
                               .platform_dir = w->dir,
                               .core_exe = CL_TEST_CORE_EXE,
                               .core = {.version = CL_CORE_API_VERSION,
                                        .snapshot_every = 5,
                                        .max_sessions = 64,
                                        .seal_policy = policy}};
    return cl_runtime_open(&cfg, lh_ops(w->lh), &w->rt);
}

static cl_status_t rt_open(world_t *w)
{
    return rt_open_image(w, CL_TEST_CORE_IMAGE, CL_SGX_KEYPOLICY_MRENCLAVE);
}

static void make_root(cc_peer_t *p, const char *cn, uint8_t *out, size_t *out_len)
{
    cl_pki_cert_req_t req = {.kind = CL_PKI_ROOT_CA,
                             .cn = cn,
                             .pub = p->pub,
                             .serial = 1,
                             .not_before = T0 / 1000 - 86400,
                             .not_after = T0 / 1000 + 86400 * 3650};
    assert_int_equal(cl_pki_make_cert(&req, cc_sign, p, out, 2048, out_len), CL_OK);
}

static void world_init(world_t *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/cl-core-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    w->lh = lh_new();
    lh_set_time(w->lh, T0);
    assert_int_equal(rt_open(w), CL_OK);
    cc_init(&w->owner, 1);
    make_root(&w->owner, "Test Owner", w->owner_cert, &w->owner_len);
}

static void world_free(world_t *w)
{
    if (w->rt != NULL)
        cl_runtime_close(w->rt);
    cc_free(&w->owner);
    lh_free(w->lh);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", w->dir);
    assert_int_equal(system(cmd), 0);
}

static void nonce_fill(uint8_t n[32], uint8_t seed)
{
    for (int i = 0; i < 32; i++)
        n[i] = (uint8_t)(seed * 31 + i);
}

/* Fetches and verifies evidence; returns the decoded map (pointing into buf). */
static cl_attest_result_t evidence(world_t *w, uint8_t seed, uint8_t *buf, size_t size,
                                   cl_attest_core_evidence_t *ev)
{
    uint8_t nonce[32];
    size_t len = 0;
    cl_attest_policy_t pol;
    nonce_fill(nonce, seed);
    assert_int_equal(cc_evidence(&w->owner, w->rt, nonce, 32, buf, size, &len), CL_COAP_CONTENT);
    assert_int_equal(cl_attest_core_evidence_decode(buf, len, ev), CL_OK);
    memset(&pol, 0, sizeof pol);
    assert_int_equal(cl_sim_measure(CL_TEST_CORE_IMAGE, pol.mr_enclave[0]), CL_OK);
    pol.n_mr_enclave = 1;
    pol.allow_simulated = true;
    return cl_attest_core_evidence_verify(ev, nonce, 32, cl_sim_root_pem(), T0 / 1000, &pol, NULL);
}

static void map1(uint8_t *out, size_t size, size_t *len, const char *k1, const uint8_t *v1,
                 size_t l1, const char *k2, const uint8_t *v2, size_t l2)
{
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_map(&e, k2 ? 2 : 1);
    cl_cbor_enc_tstr_z(&e, k1);
    cl_cbor_enc_bstr(&e, v1, l1);
    if (k2) {
        cl_cbor_enc_tstr_z(&e, k2);
        cl_cbor_enc_bstr(&e, v2, l2);
    }
    assert_int_equal(cl_cbor_enc_finish(&e, len), CL_OK);
}

static bool has_error(const uint8_t *body, size_t len, const char *code)
{
    const char *v;
    size_t vl;
    return cc_map_tstr(body, len, "error", &v, &vl) && vl == strlen(code) &&
           memcmp(v, code, vl) == 0;
}

/* Owner certificates for the core's two keys, signed by `signer`. */
static void owner_certs(world_t *w, cc_peer_t *signer, const uint8_t *issuer, size_t issuer_len,
                        const cl_attest_core_evidence_t *ev)
{
    cl_pki_cert_req_t ca = {.kind = CL_PKI_INTERMEDIATE_CA,
                            .cn = "Core CA",
                            .pub = ev->ca_pub,
                            .serial = 2,
                            .not_before = T0 / 1000 - 3600,
                            .not_after = T0 / 1000 + 86400 * 3650,
                            .issuer = issuer,
                            .issuer_len = issuer_len};
    cl_pki_cert_req_t id = ca;
    id.kind = CL_PKI_LEAF;
    id.cn = "Core identity";
    id.pub = ev->identity_pub;
    id.serial = 3;
    assert_int_equal(cl_pki_make_cert(&ca, cc_sign, signer, w->ca_cert, 2048, &w->ca_len), CL_OK);
    assert_int_equal(cl_pki_make_cert(&id, cc_sign, signer, w->id_cert, 2048, &w->id_len), CL_OK);
}

/* claim + provision + owner session */
static void provision(world_t *w)
{
    uint8_t body[2600], ev_buf[8192];
    size_t len;
    cl_attest_core_evidence_t ev;
    uint8_t h[32];

    assert_int_equal(evidence(w, 1, ev_buf, sizeof ev_buf, &ev), CL_ATTEST_OK_SIMULATED);
    assert_int_equal(ev.state_len, 5); /* "fresh" */
    map1(body, sizeof body, &len, "owner_cert", w->owner_cert, w->owner_len, NULL, NULL, 0);
    uint8_t resp[512];
    size_t rl;
    assert_int_equal(
        cc_plain(&w->owner, w->rt, CL_COAP_POST, "/pki/owner", body, len, resp, sizeof resp, &rl),
        CL_COAP_CHANGED);
    /* the evidence now binds our certificate */
    assert_int_equal(evidence(w, 2, ev_buf, sizeof ev_buf, &ev), CL_ATTEST_OK_SIMULATED);
    cl_buf_t part = {w->owner_cert, w->owner_len};
    assert_int_equal(cl_sha256(&w->owner.crypto, &part, 1, h), CL_OK);
    assert_memory_equal(ev.owner, h, 32);
    owner_certs(w, &w->owner, w->owner_cert, w->owner_len, &ev);
    map1(body, sizeof body, &len, "ca_cert", w->ca_cert, w->ca_len, "identity_cert", w->id_cert,
         w->id_len);
    assert_int_equal(cc_plain(&w->owner, w->rt, CL_COAP_POST, "/pki/provision", body, len, resp,
                              sizeof resp, &rl),
                     CL_COAP_CHANGED);
    cc_cred_x5chain(&w->owner, w->owner_cert, w->owner_len);
    cc_set_core_cert(&w->owner, w->id_cert, w->id_len);
    assert_int_equal(cc_connect(&w->owner, w->rt), CL_OK);
}

static int whoami(cc_peer_t *p, cl_runtime_t *rt, char role[16])
{
    uint8_t body[512];
    size_t len;
    const char *v;
    size_t vl;
    int code = cc_request(p, rt, CL_COAP_GET, "/whoami", NULL, 0, body, sizeof body, &len);
    role[0] = '\0';
    if (code == CL_COAP_CONTENT && cc_map_tstr(body, len, "role", &v, &vl) && vl < 16) {
        memcpy(role, v, vl);
        role[vl] = '\0';
    }
    return code;
}

/* publish: NULL = the default (any type), else a NULL-terminated list */
static void token_create_perms(world_t *w, const char *role, uint64_t ttl, const char **publish,
                               uint8_t token[16])
{
    uint8_t body[512], resp[512];
    size_t len, rl, tl, np = 0;
    const uint8_t *t;
    cl_cbor_enc_t e;
    while (publish != NULL && publish[np] != NULL)
        np++;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, publish != NULL ? 4 : 3);
    if (publish != NULL) {
        cl_cbor_enc_tstr_z(&e, "publish");
        cl_cbor_enc_array(&e, np);
        for (size_t i = 0; i < np; i++)
            cl_cbor_enc_tstr_z(&e, publish[i]);
    }
    cl_cbor_enc_tstr_z(&e, "role");
    cl_cbor_enc_tstr_z(&e, role);
    cl_cbor_enc_tstr_z(&e, "ttl");
    cl_cbor_enc_uint(&e, ttl);
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr_z(&e, "test token");
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_int_equal(cc_request(&w->owner, w->rt, CL_COAP_POST, "/pki/tokens", body, len, resp,
                                sizeof resp, &rl),
                     CL_COAP_CREATED);
    assert_true(cc_map_bstr(resp, rl, "token", &t, &tl));
    assert_int_equal(tl, 16);
    memcpy(token, t, 16);
}

static void token_create(world_t *w, const char *role, uint64_t ttl, uint8_t token[16])
{
    token_create_perms(w, role, ttl, NULL, token);
}

/* Enrolls `dev` with a token; returns the CoAP code, error body in err. */
static int enroll(world_t *w, cc_peer_t *dev, const uint8_t token[16], const char *name,
                  uint8_t *cert, size_t *cert_len, uint8_t *err, size_t *err_len)
{
    uint8_t body[256], resp[2048];
    size_t len, rl;
    cl_cbor_enc_t e;
    cc_cred_kccs(dev);
    cc_set_core_cert(dev, w->id_cert, w->id_len);
    if (cc_connect(dev, w->rt) != CL_OK)
        return -1;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "token");
    cl_cbor_enc_bstr(&e, token, 16);
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr_z(&e, name);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    int code =
        cc_request(dev, w->rt, CL_COAP_POST, "/pki/enroll", body, len, resp, sizeof resp, &rl);
    const uint8_t *c;
    size_t cl;
    if (code == CL_COAP_CREATED && cc_map_bstr(resp, rl, "cert", &c, &cl)) {
        memcpy(cert, c, cl);
        *cert_len = cl;
    } else if (err != NULL) {
        memcpy(err, resp, rl);
        *err_len = rl;
    }
    return code;
}

/* POST /event-types as the owner; history: NULL = the default roles, else e.g. "user" */
static int evtype_add(world_t *w, const char *name, const char *history)
{
    uint8_t body[256], resp[256];
    size_t len, rl;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, history != NULL ? 3 : 2);
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr_z(&e, name);
    cl_cbor_enc_tstr_z(&e, "description");
    cl_cbor_enc_tstr_z(&e, "test events");
    if (history != NULL) {
        cl_cbor_enc_tstr_z(&e, "history");
        cl_cbor_enc_array(&e, 1);
        cl_cbor_enc_tstr_z(&e, history);
    }
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    return cc_request(&w->owner, w->rt, CL_COAP_POST, "/event-types", body, len, resp,
                      sizeof resp, &rl);
}

static int publish_at(cc_peer_t *p, cl_runtime_t *rt, const char *type, int64_t time,
                      int64_t value)
{
    uint8_t body[256], resp[256];
    size_t len, rl;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, 3);
    cl_cbor_enc_tstr_z(&e, "type");
    cl_cbor_enc_tstr_z(&e, type);
    cl_cbor_enc_tstr_z(&e, "properties");
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, "value");
    cl_cbor_enc_int(&e, value);
    cl_cbor_enc_tstr_z(&e, "time");
    cl_cbor_enc_int(&e, time);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    return cc_request(p, rt, CL_COAP_POST, "/events", body, len, resp, sizeof resp, &rl);
}

static int publish(cc_peer_t *p, cl_runtime_t *rt, const char *type, const char *marker)
{
    uint8_t body[512], resp[256];
    size_t len, rl;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "type");
    cl_cbor_enc_tstr_z(&e, type);
    cl_cbor_enc_tstr_z(&e, "properties");
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "note");
    cl_cbor_enc_tstr_z(&e, marker);
    cl_cbor_enc_tstr_z(&e, "temperature");
    cl_cbor_enc_int(&e, 21);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    return cc_request(p, rt, CL_COAP_POST, "/events", body, len, resp, sizeof resp, &rl);
}

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

/* No marker anywhere the host can see: log records, snapshots, archive, log lines. */
static void assert_no_marker(world_t *w, const char *marker)
{
    const uint8_t *b;
    size_t len, checked = 0;
    for (uint64_t c = lh_first_counter(w->lh); c <= lh_last_counter(w->lh); c++)
        if (lh_get_record(w->lh, c, &b, &len) != 0) {
            assert_false(contains(b, len, marker));
            checked++;
        }
    if (lh_get_snapshot(w->lh, &b, &len) != 0) {
        assert_false(contains(b, len, marker));
        checked++;
    }
    for (size_t i = 0; i < lh_archive_count(w->lh); i++) {
        uint64_t id, bucket;
        uint8_t tag[16];
        assert_int_not_equal(lh_archive_get(w->lh, i, &id, tag, &bucket, &b, &len), 0);
        assert_false(contains(b, len, marker));
        checked++;
    }
    assert_true(checked >= 3); /* records, snapshot and archive were really searched */
    for (size_t i = 0; i < lh_line_count(w->lh); i++) {
        int level;
        const char *l = lh_line(w->lh, i, &level);
        assert_non_null(l);
        assert_null(strstr(l, marker));
    }
}

/* ------------------------------------------------------------------ tests */

static void test_fresh_core_evidence(void **state)
{
    (void)state;
    world_t w;
    uint8_t buf[8192];
    cl_attest_core_evidence_t ev;
    world_init(&w);
    assert_int_equal(evidence(&w, 7, buf, sizeof buf, &ev), CL_ATTEST_OK_SIMULATED);
    assert_memory_equal(ev.state, "fresh", 5);
    assert_null(ev.identity_cert);
    /* a protected resource without OSCORE, and EDHOC before provisioning, are refused */
    uint8_t resp[512];
    size_t rl;
    assert_int_equal(
        cc_plain(&w.owner, w.rt, CL_COAP_GET, "/whoami", NULL, 0, resp, sizeof resp, &rl),
        CL_COAP_UNAUTHORIZED);
    assert_true(has_error(resp, rl, "unauthorized"));
    cc_cred_x5chain(&w.owner, w.owner_cert, w.owner_len);
    assert_int_not_equal(cc_connect(&w.owner, w.rt), CL_OK);
    world_free(&w);
}

static void test_provision_enroll_revoke_restart(void **state)
{
    (void)state;
    world_t w;
    char role[16];
    uint8_t token[16], cert[2048], err[512], resp[512], body[2600];
    size_t cert_len, err_len, rl, len;
    world_init(&w);
    provision(&w);
    assert_int_equal(whoami(&w.owner, w.rt, role), CL_COAP_CONTENT);
    assert_string_equal(role, "owner");

    /* a second claim and a second provisioning are refused */
    map1(body, sizeof body, &len, "owner_cert", w.owner_cert, w.owner_len, NULL, NULL, 0);
    assert_int_equal(
        cc_plain(&w.owner, w.rt, CL_COAP_POST, "/pki/owner", body, len, resp, sizeof resp, &rl),
        CL_COAP_FORBIDDEN);
    assert_true(has_error(resp, rl, "already-claimed"));

    /* enrollment: token, then a device with a fresh key */
    token_create(&w, "device", 3600, token);
    cc_peer_t dev;
    cc_init(&dev, 2);
    assert_int_equal(enroll(&w, &dev, token, "thermostat", cert, &cert_len, NULL, NULL),
                     CL_COAP_CREATED);
    assert_int_equal(cl_pki_verify_issued(cert, cert_len, w.ca_cert, w.ca_len, T0 / 1000), CL_OK);
    cl_pki_cert_info_t info;
    assert_int_equal(cl_pki_cert_parse(cert, cert_len, &info), CL_OK);
    assert_string_equal(info.ou, "role:device");
    assert_memory_equal(info.pub, dev.pub, 65);
    /* the enrollee session is over; the device comes back with its certificate (x5t) */
    cc_cred_x5t(&dev, cert, cert_len);
    assert_int_equal(cc_connect(&dev, w.rt), CL_OK);
    assert_int_equal(whoami(&dev, w.rt, role), CL_COAP_CONTENT);
    assert_string_equal(role, "device");

    /* the same token again, from another key: used */
    cc_peer_t thief;
    cc_init(&thief, 3);
    assert_int_equal(enroll(&w, &thief, token, "thief", cert, &cert_len, err, &err_len),
                     CL_COAP_FORBIDDEN);
    assert_true(has_error(err, err_len, "token-used"));
    /* a forged token */
    uint8_t forged[16];
    memset(forged, 0x42, sizeof forged);
    assert_int_equal(enroll(&w, &thief, forged, "thief", cert, &cert_len, err, &err_len),
                     CL_COAP_FORBIDDEN);
    assert_true(has_error(err, err_len, "token-invalid"));
    /* an expired token */
    token_create(&w, "user", 60, token);
    lh_advance(w.lh, 61 * 1000);
    assert_int_equal(enroll(&w, &thief, token, "late", cert, &cert_len, err, &err_len),
                     CL_COAP_FORBIDDEN);
    assert_true(has_error(err, err_len, "token-expired"));
    /* an enrollee may do nothing but enroll */
    assert_int_equal(whoami(&thief, w.rt, role), CL_COAP_FORBIDDEN);

    /* roles: a device cannot create tokens or list clients */
    assert_int_equal(cc_request(&dev, w.rt, CL_COAP_POST, "/pki/tokens", (const uint8_t *)"\xa0", 1,
                                resp, sizeof resp, &rl),
                     CL_COAP_FORBIDDEN);
    assert_int_equal(
        cc_request(&dev, w.rt, CL_COAP_GET, "/clients", NULL, 0, resp, sizeof resp, &rl),
        CL_COAP_FORBIDDEN);
    assert_int_equal(
        cc_request(&w.owner, w.rt, CL_COAP_GET, "/clients", NULL, 0, resp, sizeof resp, &rl),
        CL_COAP_CONTENT);

    /* events: an unknown type is refused; accepted once the type exists */
    const char *marker = "CANARY-7f3a9c1e-core";
    assert_int_equal(publish(&dev, w.rt, "temperature", marker), CL_COAP_NOT_FOUND);
    assert_int_equal(evtype_add(&w, "temperature", NULL), CL_COAP_CREATED);
    assert_int_equal(lh_archive_count(w.lh), 0);
    assert_int_equal(publish(&dev, w.rt, "temperature", marker), CL_COAP_CHANGED);
    assert_int_equal(lh_archive_count(w.lh), 1);
    assert_no_marker(&w, marker);

    /* revocation drops the live session at once and refuses new handshakes */
    uint64_t dev_id = 1;
    char path[32];
    snprintf(path, sizeof path, "/clients/%llu/revoke", (unsigned long long)dev_id);
    assert_int_equal(
        cc_request(&w.owner, w.rt, CL_COAP_POST, path, NULL, 0, resp, sizeof resp, &rl),
        CL_COAP_CHANGED);
    assert_int_equal(whoami(&dev, w.rt, role), -(int)CL_COAP_UNAUTHORIZED);
    assert_int_not_equal(cc_connect(&dev, w.rt), CL_OK);

    /* restart: unseal + replay; state survives, sessions do not */
    cl_runtime_close(w.rt);
    w.rt = NULL;
    assert_int_equal(rt_open(&w), CL_OK);
    assert_int_equal(whoami(&w.owner, w.rt, role), -(int)CL_COAP_UNAUTHORIZED);
    assert_int_equal(cc_connect(&w.owner, w.rt), CL_OK);
    assert_int_equal(whoami(&w.owner, w.rt, role), CL_COAP_CONTENT);
    assert_string_equal(role, "owner");
    assert_int_not_equal(cc_connect(&dev, w.rt), CL_OK); /* still revoked */
    uint8_t ev_buf[8192];
    cl_attest_core_evidence_t ev;
    assert_int_equal(evidence(&w, 9, ev_buf, sizeof ev_buf, &ev), CL_ATTEST_OK_SIMULATED);
    assert_memory_equal(ev.state, "provisioned", 11);
    assert_int_equal(ev.identity_cert_len, w.id_len);
    assert_no_marker(&w, marker);
    cc_free(&dev);
    cc_free(&thief);
    world_free(&w);
}

static void test_hijacked_core(void **state)
{
    (void)state;
    world_t w;
    uint8_t body[2600], resp[512], ev_buf[8192], mallory_cert[2048], h[32];
    size_t len, rl, mallory_len;
    cl_attest_core_evidence_t ev;
    world_init(&w);
    /* someone else claims the fresh core first */
    cc_peer_t mallory;
    cc_init(&mallory, 9);
    make_root(&mallory, "Mallory", mallory_cert, &mallory_len);
    map1(body, sizeof body, &len, "owner_cert", mallory_cert, mallory_len, NULL, NULL, 0);
    assert_int_equal(
        cc_plain(&mallory, w.rt, CL_COAP_POST, "/pki/owner", body, len, resp, sizeof resp, &rl),
        CL_COAP_CHANGED);
    /* the real owner's claim is refused ... */
    map1(body, sizeof body, &len, "owner_cert", w.owner_cert, w.owner_len, NULL, NULL, 0);
    assert_int_equal(
        cc_plain(&w.owner, w.rt, CL_COAP_POST, "/pki/owner", body, len, resp, sizeof resp, &rl),
        CL_COAP_FORBIDDEN);
    /* ... and the evidence (which verifies) binds another owner: detected */
    assert_int_equal(evidence(&w, 3, ev_buf, sizeof ev_buf, &ev), CL_ATTEST_OK_SIMULATED);
    cl_buf_t part = {w.owner_cert, w.owner_len};
    assert_int_equal(cl_sha256(&w.owner.crypto, &part, 1, h), CL_OK);
    assert_memory_not_equal(ev.owner, h, 32);
    /* certificates signed by the real owner are refused by Mallory's core */
    owner_certs(&w, &w.owner, w.owner_cert, w.owner_len, &ev);
    map1(body, sizeof body, &len, "ca_cert", w.ca_cert, w.ca_len, "identity_cert", w.id_cert,
         w.id_len);
    assert_int_equal(
        cc_plain(&w.owner, w.rt, CL_COAP_POST, "/pki/provision", body, len, resp, sizeof resp, &rl),
        CL_COAP_FORBIDDEN);
    assert_true(has_error(resp, rl, "not-owner"));
    /* certificates for other keys, even from the right signer, are refused */
    cl_attest_core_evidence_t wrong = ev;
    wrong.ca_pub = w.owner.pub;
    owner_certs(&w, &mallory, mallory_cert, mallory_len, &wrong);
    map1(body, sizeof body, &len, "ca_cert", w.ca_cert, w.ca_len, "identity_cert", w.id_cert,
         w.id_len);
    assert_int_equal(
        cc_plain(&mallory, w.rt, CL_COAP_POST, "/pki/provision", body, len, resp, sizeof resp, &rl),
        CL_COAP_BAD_REQUEST);
    assert_true(has_error(resp, rl, "bad-certificate"));
    cc_free(&mallory);
    world_free(&w);
}

static void test_lying_host(void **state)
{
    (void)state;
    world_t w;
    char role[16];
    uint8_t token[16], resp[512], body[256];
    size_t rl, len;
    world_init(&w);
    provision(&w);

    /* the host fails the append: the client gets storage-failed and nothing changed */
    lh_fail_after(w.lh, LH_OP_LOG_APPEND, 0);
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "role");
    cl_cbor_enc_tstr_z(&e, "device");
    cl_cbor_enc_tstr_z(&e, "ttl");
    cl_cbor_enc_uint(&e, 600);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    size_t records = lh_record_count(w.lh);
    assert_int_equal(
        cc_request(&w.owner, w.rt, CL_COAP_POST, "/pki/tokens", body, len, resp, sizeof resp, &rl),
        CL_COAP_SERVICE_UNAVAILABLE);
    assert_true(has_error(resp, rl, "storage-failed"));
    assert_int_equal(lh_record_count(w.lh), records);
    lh_fail_clear(w.lh);
    token_create(&w, "device", 600, token);
    /* wrong clock: time going backwards does not revive expired tokens or break the core */
    lh_set_lie(w.lh, LH_LIE_CLOCK_BACKWARDS, 3600 * 1000);
    assert_int_equal(whoami(&w.owner, w.rt, role), CL_COAP_CONTENT);
    lh_clear_lies(w.lh);
    for (int i = 0; i < 8 && lh_last_counter(w.lh) - lh_first_counter(w.lh) < 3; i++)
        token_create(&w, "user", 600, token); /* records after the last snapshot */
    cl_runtime_close(w.rt);
    w.rt = NULL;

    /* boot lies: each one refuses the boot cleanly; the honest store boots again */
    /* (a duplicate returned for the next counter and an older snapshot with the
       full log are consistent: they must boot to the same state, see docs/sealed-state.md) */
    int64_t last = (int64_t)lh_last_counter(w.lh);
    assert_true(last - (int64_t)lh_first_counter(w.lh) >= 2); /* records after the snapshot */
    const struct {
        lh_lie_t lie;
        int64_t param;
        bool detectable;
    } lies[] = {{LH_LIE_CORRUPT_READ, 40, true},  {LH_LIE_HIDE_ONE, last - 1, true},
                {LH_LIE_REORDER, last - 1, true}, {LH_LIE_LEN_OVER_SIZE, 1, true},
                {LH_LIE_STALE, last, true},       {LH_LIE_DUPLICATE, last, true},
                {LH_LIE_OLD_SNAPSHOT, 1, false}};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        lh_set_lie(w.lh, lies[i].lie, lies[i].param);
        size_t before = lh_record_count(w.lh);
        cl_status_t st = rt_open(&w);
        if (lies[i].detectable) {
            assert_int_not_equal(st, CL_OK);
            assert_int_equal(lh_record_count(w.lh), before); /* nothing appended */
        } else if (st == CL_OK) {
            assert_int_equal(cc_connect(&w.owner, w.rt), CL_OK);
            assert_int_equal(whoami(&w.owner, w.rt, role), CL_COAP_CONTENT);
            cl_runtime_close(w.rt);
            w.rt = NULL;
        }
        lh_clear_lies(w.lh);
    }
    /* failures at every call of the boot */
    for (unsigned long n = 0; n < 6; n++) {
        lh_fail_after(w.lh, LH_OP_ANY, n);
        cl_status_t st = rt_open(&w);
        lh_fail_clear(w.lh);
        if (st == CL_OK) {
            cl_runtime_close(w.rt);
            w.rt = NULL;
        }
    }
    assert_int_equal(rt_open(&w), CL_OK);
    assert_int_equal(cc_connect(&w.owner, w.rt), CL_OK);
    assert_int_equal(whoami(&w.owner, w.rt, role), CL_COAP_CONTENT);
    /* garbage batches are refused without harm */
    uint8_t junk[64];
    size_t out_len;
    static uint8_t out[CL_CORE_MAX_BATCH_BYTES];
    memset(junk, 0xff, sizeof junk);
    assert_int_not_equal(cl_runtime_handle(w.rt, junk, sizeof junk, out, sizeof out, &out_len),
                         CL_OK);
    assert_int_equal(whoami(&w.owner, w.rt, role), CL_COAP_CONTENT);
    world_free(&w);
}

/* Per-client permissions: set from the token, changed by the owner, kept across restarts. */
static void test_permissions(void **state)
{
    (void)state;
    world_t w;
    uint8_t token[16], cert[2048], resp[512], body[256];
    size_t cert_len, rl, len;
    const char *only_temp[] = {"temperature", NULL};
    world_init(&w);
    provision(&w);
    token_create_perms(&w, "device", 3600, only_temp, token);
    cc_peer_t dev;
    cc_init(&dev, 4);
    assert_int_equal(enroll(&w, &dev, token, "valve", cert, &cert_len, NULL, NULL),
                     CL_COAP_CREATED);
    cc_cred_x5t(&dev, cert, cert_len);
    assert_int_equal(cc_connect(&dev, w.rt), CL_OK);
    assert_int_equal(evtype_add(&w, "temperature", NULL), CL_COAP_CREATED);
    assert_int_equal(evtype_add(&w, "humidity", NULL), CL_COAP_CREATED);
    assert_int_equal(publish(&dev, w.rt, "temperature", "t1"), CL_COAP_CHANGED);
    assert_int_equal(publish(&dev, w.rt, "humidity", "h1"), CL_COAP_FORBIDDEN);
    assert_int_equal(lh_archive_count(w.lh), 1); /* the refused event was not stored */
    /* malformed permission lists are refused */
    uint8_t empty[] = {0xa1, 0x67, 'p', 'u', 'b', 'l', 'i', 's', 'h', 0x80};
    assert_int_equal(cc_request(&w.owner, w.rt, CL_COAP_POST, "/clients/1/permissions", empty,
                                sizeof empty, resp, sizeof resp, &rl),
                     CL_COAP_BAD_REQUEST);
    /* a device cannot change permissions; the owner can */
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, "publish");
    cl_cbor_enc_array(&e, 1);
    cl_cbor_enc_tstr_z(&e, "humidity");
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_int_equal(cc_request(&dev, w.rt, CL_COAP_POST, "/clients/1/permissions", body, len, resp,
                                sizeof resp, &rl),
                     CL_COAP_FORBIDDEN);
    assert_int_equal(cc_request(&w.owner, w.rt, CL_COAP_POST, "/clients/1/permissions", body, len,
                                resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_int_equal(publish(&dev, w.rt, "humidity", "h2"), CL_COAP_CHANGED);
    assert_int_equal(publish(&dev, w.rt, "temperature", "t2"), CL_COAP_FORBIDDEN);
    /* kept across a restart (sealed log / snapshot) */
    cl_runtime_close(w.rt);
    w.rt = NULL;
    assert_int_equal(rt_open(&w), CL_OK);
    assert_int_equal(cc_connect(&dev, w.rt), CL_OK);
    assert_int_equal(publish(&dev, w.rt, "temperature", "t3"), CL_COAP_FORBIDDEN);
    assert_int_equal(publish(&dev, w.rt, "humidity", "h3"), CL_COAP_CHANGED);
    cc_free(&dev);
    world_free(&w);
}

static size_t hist_count(const uint8_t *body, size_t len, bool *more)
{
    cl_cbor_dec_t d;
    size_t n = 0;
    const uint8_t *v;
    size_t vl;
    *more = false;
    if (cc_map_bstr(body, len, "events", &v, &vl))
        return SIZE_MAX; /* not an array */
    /* find "events" by scanning the map */
    cl_cbor_dec_init(&d, body, len);
    size_t pairs;
    if (cl_cbor_dec_map(&d, &pairs) != CL_OK)
        return SIZE_MAX;
    for (size_t i = 0; i < pairs; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            return SIZE_MAX;
        if (kl == 6 && memcmp(k, "events", 6) == 0) {
            if (cl_cbor_dec_array(&d, &n) != CL_OK)
                return SIZE_MAX;
            for (size_t j = 0; j < n; j++)
                if (cl_cbor_dec_skip(&d) != CL_OK)
                    return SIZE_MAX;
        } else if (kl == 4 && memcmp(k, "more", 4) == 0) {
            if (cl_cbor_dec_bool(&d, more) != CL_OK)
                return SIZE_MAX;
        } else if (cl_cbor_dec_skip(&d) != CL_OK) {
            return SIZE_MAX;
        }
    }
    return n;
}

/* History: filters, ordering, paging, Block2, authorization, a lying archive. */
static void test_history(void **state)
{
    (void)state;
    world_t w;
    uint8_t token[16], cert[2048], body[40000];
    size_t cert_len, len;
    unsigned blocks;
    bool more;
    char q[160];
    world_init(&w);
    provision(&w);
    assert_int_equal(evtype_add(&w, "temperature", "user"), CL_COAP_CREATED);
    assert_int_equal(evtype_add(&w, "door", "admin"), CL_COAP_CREATED);
    cc_peer_t dev[2];
    for (int i = 0; i < 2; i++) {
        token_create(&w, "device", 600, token);
        cc_init(&dev[i], 20 + (uint64_t)i);
        assert_int_equal(enroll(&w, &dev[i], token, i ? "b" : "a", cert, &cert_len, NULL, NULL),
                         CL_COAP_CREATED);
        cc_cred_x5t(&dev[i], cert, cert_len);
        assert_int_equal(cc_connect(&dev[i], w.rt), CL_OK);
    }
    /* 30 temperature events from each device over three hours, 5 door events from b */
    for (int i = 0; i < 30; i++)
        for (int k = 0; k < 2; k++)
            assert_int_equal(publish_at(&dev[k], w.rt, "temperature", T0 + i * 360000 + k, i),
                             CL_COAP_CHANGED);
    for (int i = 0; i < 5; i++)
        assert_int_equal(publish_at(&dev[1], w.rt, "door", T0 + i * 1000, i), CL_COAP_CHANGED);
    assert_int_equal(lh_archive_count(w.lh), 65);

    assert_int_equal(cc_get(&w.owner, w.rt, "/events", "type=temperature&limit=100", body,
                            sizeof body, &len, &blocks),
                     CL_COAP_CONTENT);
    assert_int_equal(hist_count(body, len, &more), 60);
    assert_false(more);
    assert_true(blocks > 1); /* several KiB: served with inner Block2 */
    snprintf(q, sizeof q, "type=temperature&source=2&since=%lld&until=%lld&limit=100",
             (long long)(T0 + 3600000), (long long)(T0 + 7200000));
    assert_int_equal(cc_get(&w.owner, w.rt, "/events", q, body, sizeof body, &len, &blocks),
                     CL_COAP_CONTENT);
    assert_int_equal(hist_count(body, len, &more), 10); /* b's events in the second hour */
    /* paging: 25 per page over 65 events */
    assert_int_equal(cc_get(&w.owner, w.rt, "/events", "limit=25", body, sizeof body, &len,
                            &blocks),
                     CL_COAP_CONTENT);
    assert_int_equal(hist_count(body, len, &more), 25);
    assert_true(more);
    /* authorization per event type: devices read nothing, door history is admin-only */
    assert_int_equal(cc_get(&dev[0], w.rt, "/events", "type=temperature", body, sizeof body,
                            &len, &blocks),
                     CL_COAP_FORBIDDEN);
    assert_int_equal(cc_get(&w.owner, w.rt, "/events", "type=nosuch", body, sizeof body, &len,
                            &blocks),
                     CL_COAP_NOT_FOUND);
    assert_int_equal(cc_get(&w.owner, w.rt, "/events", "limit=0", body, sizeof body, &len,
                            &blocks),
                     CL_COAP_BAD_REQUEST);
    /* a host that ignores every filter (tag, buckets, after_id): the rows of other tags
       fail authentication and the repeated ids break the paging contract - refused */
    lh_set_lie(w.lh, LH_LIE_SCAN_NO_FILTER, 1);
    assert_int_equal(cc_get(&w.owner, w.rt, "/events", "type=door&limit=100", body, sizeof body,
                            &len, &blocks),
                     CL_COAP_SERVICE_UNAVAILABLE);
    lh_clear_lies(w.lh);
    /* a host that corrupts the scan framing: refused, not misread */
    lh_set_lie(w.lh, LH_LIE_SCAN_BAD_FRAME, 100000);
    assert_int_equal(cc_get(&w.owner, w.rt, "/events", "type=door", body, sizeof body, &len,
                            &blocks),
                     CL_COAP_SERVICE_UNAVAILABLE);
    lh_clear_lies(w.lh);
    /* event types survive a restart; the archive is still readable */
    cl_runtime_close(w.rt);
    w.rt = NULL;
    assert_int_equal(rt_open(&w), CL_OK);
    assert_int_equal(cc_connect(&w.owner, w.rt), CL_OK);
    assert_int_equal(cc_get(&w.owner, w.rt, "/events", "type=door", body, sizeof body, &len,
                            &blocks),
                     CL_COAP_CONTENT);
    assert_int_equal(hist_count(body, len, &more), 5);
    for (int i = 0; i < 2; i++)
        cc_free(&dev[i]);
    world_free(&w);
}

/* Untrusted time: a host clock that jumps back cannot revive an expired token. */
static void test_wrong_clock(void **state)
{
    (void)state;
    world_t w;
    uint8_t token[16], cert[2048], err[512];
    size_t cert_len, err_len;
    world_init(&w);
    provision(&w);
    token_create(&w, "device", 60, token);
    lh_advance(w.lh, 120 * 1000); /* the core sees the token expire ... */
    char role[16];
    assert_int_equal(whoami(&w.owner, w.rt, role), CL_COAP_CONTENT);
    lh_set_time(w.lh, T0 - 86400 * 1000); /* ... then the host turns its clock back a day */
    cc_peer_t dev;
    cc_init(&dev, 5);
    assert_int_equal(enroll(&w, &dev, token, "late", cert, &cert_len, err, &err_len),
                     CL_COAP_FORBIDDEN);
    assert_true(has_error(err, err_len, "token-expired"));
    /* and across a restart too (the core's clock is in its sealed state) */
    cl_runtime_close(w.rt);
    w.rt = NULL;
    assert_int_equal(rt_open(&w), CL_OK);
    assert_int_equal(enroll(&w, &dev, token, "late", cert, &cert_len, err, &err_len),
                     CL_COAP_FORBIDDEN);
    assert_true(has_error(err, err_len, "token-expired"));
    cc_free(&dev);
    world_free(&w);
}

/* Anybody can become an enrollee (raw key); enrollees cannot push others out. */
static void test_enrollee_flood(void **state)
{
    (void)state;
    world_t w;
    char role[16];
    uint8_t resp[256];
    size_t rl;
    enum { N = 12 }; /* the table has 64 sessions: enrollees get at most 8 */
    static cc_peer_t peers[N];
    world_init(&w);
    provision(&w);
    for (int i = 0; i < N; i++) {
        cc_init(&peers[i], 100 + (uint64_t)i);
        cc_cred_kccs(&peers[i]);
        cc_set_core_cert(&peers[i], w.id_cert, w.id_len);
        assert_int_equal(cc_connect(&peers[i], w.rt), CL_OK);
    }
    int live = 0;
    for (int i = 0; i < N; i++) /* a live enrollee session answers 4.03 (enroll first) */
        live += cc_request(&peers[i], w.rt, CL_COAP_GET, "/whoami", NULL, 0, resp, sizeof resp,
                           &rl) == CL_COAP_FORBIDDEN;
    assert_true(live >= 1 && live <= 8);
    /* the oldest enrollee was dropped, the owner's session was not */
    assert_int_equal(
        cc_request(&peers[0], w.rt, CL_COAP_GET, "/whoami", NULL, 0, resp, sizeof resp, &rl),
        -(int)CL_COAP_UNAUTHORIZED);
    assert_int_equal(whoami(&w.owner, w.rt, role), CL_COAP_CONTENT);
    /* enrollee sessions expire after a minute */
    lh_advance(w.lh, 61 * 1000);
    assert_int_equal(cl_runtime_tick(w.rt, T0 + 61 * 1000), CL_OK);
    assert_int_equal(
        cc_request(&peers[N - 1], w.rt, CL_COAP_GET, "/whoami", NULL, 0, resp, sizeof resp, &rl),
        -(int)CL_COAP_UNAUTHORIZED);
    for (int i = 0; i < N; i++)
        cc_free(&peers[i]);
    world_free(&w);
}

/* Sealed state and core builds: MRENCLAVE binds the exact build, MRSIGNER the signer. */
static void test_sealing_across_builds(void **state)
{
    (void)state;
    world_t w;
    char role[16];
    uint8_t m1[32], m2[32];
    assert_int_equal(cl_sim_measure(CL_TEST_CORE_IMAGE, m1), CL_OK);
    assert_int_equal(cl_sim_measure(CL_TEST_CORE_IMAGE_V2, m2), CL_OK);
    assert_memory_not_equal(m1, m2, 32);

    /* MRENCLAVE policy (the default): another build cannot open the state */
    world_init(&w);
    provision(&w);
    cl_runtime_close(w.rt);
    w.rt = NULL;
    size_t before = lh_record_count(w.lh);
    assert_int_not_equal(rt_open_image(&w, CL_TEST_CORE_IMAGE_V2, CL_SGX_KEYPOLICY_MRENCLAVE),
                         CL_OK);
    assert_int_equal(lh_record_count(w.lh), before);
    assert_int_equal(rt_open(&w), CL_OK); /* the original build still can */
    assert_int_equal(cc_connect(&w.owner, w.rt), CL_OK);
    world_free(&w);

    /* MRSIGNER policy: an upgraded build of the same signer opens it */
    world_init(&w);
    cl_runtime_close(w.rt);
    /* (the store now holds MRENCLAVE-sealed records: a core configured for MRSIGNER refuses them)
     */
    assert_int_not_equal(rt_open_image(&w, CL_TEST_CORE_IMAGE, CL_SGX_KEYPOLICY_MRSIGNER), CL_OK);
    lh_free(w.lh);
    w.lh = lh_new();
    lh_set_time(w.lh, T0);
    assert_int_equal(rt_open_image(&w, CL_TEST_CORE_IMAGE, CL_SGX_KEYPOLICY_MRSIGNER), CL_OK);
    provision(&w);
    cl_runtime_close(w.rt);
    w.rt = NULL;
    assert_int_equal(rt_open_image(&w, CL_TEST_CORE_IMAGE_V2, CL_SGX_KEYPOLICY_MRSIGNER), CL_OK);
    assert_int_equal(cc_connect(&w.owner, w.rt), CL_OK);
    assert_int_equal(whoami(&w.owner, w.rt, role), CL_COAP_CONTENT);
    assert_string_equal(role, "owner");
    world_free(&w);
}


/* ---- the model and the rules (docs/model.md) ---- */

/* JSON text -> CBOR (the tests write documents as people do). */
static size_t jcbor(const char *json, uint8_t *out, size_t size)
{
    size_t len = 0, off = 0;
    cl_status_t st = cl_json_to_cbor(json, strlen(json), out, size, &len, &off);
    if (st != CL_OK)
        fprintf(stderr, "bad test JSON at %zu: %s\n", off, json);
    assert_int_equal(st, CL_OK);
    return len;
}

static int jreq(cc_peer_t *p, cl_runtime_t *rt, uint8_t code, const char *path, const char *json,
                uint8_t *resp, size_t resp_size, size_t *rl)
{
    uint8_t body[4096];
    size_t len = json != NULL ? jcbor(json, body, sizeof body) : 0;
    return cc_request(p, rt, code, path, body, len, resp, resp_size, rl);
}

/* The actions of a {"actions": [...]} body: count, and the first one's "action"/"id". */
static size_t actions_of(const uint8_t *body, size_t len, uint64_t ids[8], const uint8_t **first,
                         size_t *first_len)
{
    cl_cbor_dec_t d;
    size_t pairs, n = 0;
    cl_cbor_dec_init(&d, body, len);
    assert_int_equal(cl_cbor_dec_map(&d, &pairs), CL_OK);
    for (size_t i = 0; i < pairs; i++) {
        const char *k;
        size_t kl;
        assert_int_equal(cl_cbor_dec_tstr(&d, &k, &kl), CL_OK);
        if (kl != 7 || memcmp(k, "actions", 7) != 0) {
            assert_int_equal(cl_cbor_dec_skip(&d), CL_OK);
            continue;
        }
        assert_int_equal(cl_cbor_dec_array(&d, &n), CL_OK);
        for (size_t j = 0; j < n; j++) {
            const uint8_t *a;
            size_t al;
            uint64_t id = 0;
            assert_int_equal(cl_cbor_dec_raw(&d, &a, &al), CL_OK);
            assert_true(cc_map_uint(a, al, "id", &id));
            if (j < 8)
                ids[j] = id;
            if (j == 0 && first != NULL) {
                *first = a;
                *first_len = al;
            }
        }
    }
    return n;
}

/* The newest message the core sent since `from`, decrypted as a notification for p. */
static int last_notification(world_t *w, cc_peer_t *p, cl_oscore_req_t *oreq, size_t from,
                             uint8_t *out, size_t size, size_t *len, uint8_t *type)
{
    size_t n = lh_sent_count(w->lh);
    uint64_t peer;
    uint16_t tr;
    const uint8_t *msg;
    size_t ml;
    if (n <= from)
        return 0;
    assert_int_equal(lh_sent(w->lh, n - 1, &peer, &tr, &msg, &ml), 1);
    assert_int_equal(peer, p->peer_id);
    return cc_notification(p, oreq, msg, ml, out, size, len, type);
}

static void enroll_as(world_t *w, cc_peer_t *dev, uint64_t peer_id, const char *name,
                      const char **publish_types)
{
    uint8_t token[16], cert[2048];
    size_t cert_len;
    token_create_perms(w, "device", 3600, publish_types, token);
    cc_init(dev, peer_id);
    assert_int_equal(enroll(w, dev, token, name, cert, &cert_len, NULL, NULL), CL_COAP_CREATED);
    cc_cred_x5t(dev, cert, cert_len);
    assert_int_equal(cc_connect(dev, w->rt), CL_OK);
}

static void test_rules(void **state)
{
    (void)state;
    world_t w;
    uint8_t resp[8192], body[2048];
    size_t rl, bl;
    const char *temps[] = {"temp", NULL};
    cc_peer_t sensor, valve;
    cl_oscore_req_t oreq;
    bool has_obs;
    uint64_t ids[8];
    uint8_t type;
    const uint8_t *first;
    size_t first_len;
    unsigned nb;

    world_init(&w);
    provision(&w);
    /* types with schemas; a violating event is refused and not archived */
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_POST, "/event-types",
                          "{\"name\":\"temp\",\"schema\":{\"type\":\"object\",\"properties\":"
                          "{\"c\":{\"type\":\"number\",\"maximum\":60}},\"required\":[\"c\"]}}",
                          resp, sizeof resp, &rl),
                     CL_COAP_CREATED);
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_PUT, "/action-types/valve.set",
                          "{\"description\":\"set a valve\",\"schema\":{\"type\":\"object\","
                          "\"properties\":{\"mode\":{\"enum\":[\"eco\",\"comfort\"]}},"
                          "\"required\":[\"mode\"]}}",
                          resp, sizeof resp, &rl),
                     CL_COAP_CREATED);
    enroll_as(&w, &sensor, 11, "sensor", temps);
    enroll_as(&w, &valve, 12, "valve", temps);
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_POST, "/clients/2/groups",
                          "{\"groups\":[\"valves\"]}", resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    size_t archived = lh_archive_count(w.lh);
    assert_int_equal(jreq(&sensor, w.rt, CL_COAP_POST, "/events",
                          "{\"type\":\"temp\",\"properties\":{\"c\":99}}", resp, sizeof resp, &rl),
                     CL_COAP_BAD_REQUEST);
    assert_true(has_error(resp, rl, "schema-violation"));
    assert_int_equal(lh_archive_count(w.lh), archived);

    /* rules: declarative with a template, and a script with state */
    const char *hot = "{\"rule\":{\"name\":\"hot\",\"on\":[\"temp\"],\"when\":{\"all\":[{\"prop\":"
                      "\"c\",\"op\":\"gt\",\"value\":25}]},\"then\":[{\"action\":\"valve.set\","
                      "\"target\":\"@valves\",\"properties\":{\"mode\":\"eco\",\"c\":"
                      "\"{{event.properties.c}}\"}}]}}";
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_PUT, "/rules/hot", hot, resp, sizeof resp, &rl),
                     CL_COAP_CREATED);
    assert_int_equal(
        jreq(&w.owner, w.rt, CL_COAP_PUT, "/rules/count",
             "{\"rule\":{\"name\":\"count\",\"on\":[\"temp\"],\"script\":\"state.n = (state.n || "
             "0) + 1; if (state.n % 2 == 0) emit('valve.set', '@valves', {mode: 'comfort', n: "
             "state.n});\"}}",
             resp, sizeof resp, &rl),
        CL_COAP_CREATED);
    /* a device cannot edit rules; a stale version is refused; a bad rule says why */
    assert_int_equal(jreq(&sensor, w.rt, CL_COAP_PUT, "/rules/hot", hot, resp, sizeof resp, &rl),
                     CL_COAP_FORBIDDEN);
    char stale[1024];
    snprintf(stale, sizeof stale, "%.*s,\"if_version\":0}", (int)strlen(hot) - 1, hot);
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_PUT, "/rules/hot", stale, resp, sizeof resp, &rl),
                     CL_COAP_PRECONDITION_FAILED);
    assert_true(has_error(resp, rl, "version-conflict"));
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_PUT, "/rules/bad",
                          "{\"rule\":{\"name\":\"bad\",\"on\":[\"temp\"]}}", resp, sizeof resp, &rl),
                     CL_COAP_BAD_REQUEST);
    assert_true(has_error(resp, rl, "bad-rule"));

    /* the valve observes its actions */
    assert_int_equal(cc_observe(&valve, w.rt, "/actions", 0, &oreq, body, sizeof body, &bl, &has_obs),
                     CL_COAP_CONTENT);
    assert_true(has_obs);
    assert_int_equal(actions_of(body, bl, ids, NULL, NULL), 0);

    /* a hot reading: the valve is notified (CON, protected) with the templated action */
    size_t sent0 = lh_sent_count(w.lh);
    assert_int_equal(jreq(&sensor, w.rt, CL_COAP_POST, "/events",
                          "{\"type\":\"temp\",\"properties\":{\"c\":30}}", resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_int_equal(last_notification(&w, &valve, &oreq, sent0, body, sizeof body, &bl, &type),
                     CL_COAP_CONTENT);
    assert_int_equal(type, CL_COAP_CON);
    assert_int_equal(actions_of(body, bl, ids, &first, &first_len), 1);
    const char *act;
    size_t act_len;
    assert_true(cc_map_tstr(first, first_len, "action", &act, &act_len));
    assert_int_equal(act_len, 9);
    assert_memory_equal(act, "valve.set", 9);
    cl_cbor_dec_t d;
    assert_true(cc_map_find(first, first_len, "properties", &d));
    const uint8_t *props;
    size_t pl;
    assert_int_equal(cl_cbor_dec_raw(&d, &props, &pl), CL_OK);
    uint64_t c30 = 0;
    assert_true(cc_map_uint(props, pl, "c", &c30)); /* typed placeholder: still a number */
    assert_int_equal(c30, 30);

    /* a dry run changes nothing */
    size_t sent1 = lh_sent_count(w.lh);
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_POST, "/rules/hot/validate",
                          "{\"event\":{\"type\":\"temp\",\"properties\":{\"c\":40}}}", resp,
                          sizeof resp, &rl),
                     CL_COAP_CONTENT);
    bool matched = false;
    assert_true(cc_map_find(resp, rl, "matched", &d));
    assert_int_equal(cl_cbor_dec_bool(&d, &matched), CL_OK);
    assert_true(matched);
    assert_int_equal(lh_sent_count(w.lh), sent1);

    /* the second reading: the script's state reaches 2 and it emits */
    assert_int_equal(jreq(&sensor, w.rt, CL_COAP_POST, "/events",
                          "{\"type\":\"temp\",\"properties\":{\"c\":20}}", resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_int_equal(last_notification(&w, &valve, &oreq, sent1, body, sizeof body, &bl, &type),
                     CL_COAP_CONTENT);
    assert_int_equal(actions_of(body, bl, ids, NULL, NULL), 2); /* pending: both */

    /* acknowledge the first: one left */
    char ack[64];
    snprintf(ack, sizeof ack, "{\"ids\":[%llu,999999]}", (unsigned long long)ids[0]);
    assert_int_equal(jreq(&valve, w.rt, CL_COAP_POST, "/actions/ack", ack, resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    uint64_t acked = 0;
    assert_true(cc_map_uint(resp, rl, "acked", &acked));
    assert_int_equal(acked, 1);
    /* the sensor cannot acknowledge the valve's actions */
    snprintf(ack, sizeof ack, "{\"ids\":[%llu]}", (unsigned long long)ids[1]);
    assert_int_equal(jreq(&sensor, w.rt, CL_COAP_POST, "/actions/ack", ack, resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_true(cc_map_uint(resp, rl, "acked", &acked));
    assert_int_equal(acked, 0);

    /* restart: the pending action, the rules and the script's state are all there */
    cl_runtime_close(w.rt);
    w.rt = NULL;
    assert_int_equal(rt_open(&w), CL_OK);
    assert_int_equal(cc_connect(&w.owner, w.rt), CL_OK);
    assert_int_equal(cc_connect(&sensor, w.rt), CL_OK);
    assert_int_equal(cc_connect(&valve, w.rt), CL_OK);
    assert_int_equal(cc_get(&valve, w.rt, "/actions", NULL, body, sizeof body, &bl, &nb),
                     CL_COAP_CONTENT);
    assert_int_equal(actions_of(body, bl, ids, NULL, NULL), 1);
    assert_int_equal(jreq(&sensor, w.rt, CL_COAP_POST, "/events",
                          "{\"type\":\"temp\",\"properties\":{\"c\":10}}", resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_int_equal(jreq(&sensor, w.rt, CL_COAP_POST, "/events",
                          "{\"type\":\"temp\",\"properties\":{\"c\":11}}", resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_int_equal(cc_get(&valve, w.rt, "/actions", NULL, body, sizeof body, &bl, &nb),
                     CL_COAP_CONTENT);
    assert_int_equal(actions_of(body, bl, ids, NULL, NULL), 2);
    /* the newest carries n = 4: the state survived the restart */
    assert_true(contains(body, bl, "comfort"));
    uint8_t four[] = {0x61, 'n', 0x04};
    bool found4 = false;
    for (size_t i = 0; i + sizeof four <= bl && !found4; i++)
        found4 = memcmp(body + i, four, sizeof four) == 0;
    assert_true(found4);

    /* a hostile script stops only its own rule, with a reason the owner reads */
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_PUT, "/rules/spin",
                          "{\"rule\":{\"name\":\"spin\",\"on\":[\"temp\"],\"script\":\"while "
                          "(true) {}\"}}",
                          resp, sizeof resp, &rl),
                     CL_COAP_CREATED);
    assert_int_equal(jreq(&sensor, w.rt, CL_COAP_POST, "/events",
                          "{\"type\":\"temp\",\"properties\":{\"c\":31}}", resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_int_equal(cc_get(&w.owner, w.rt, "/rules", NULL, resp, sizeof resp, &rl, &nb),
                     CL_COAP_CONTENT);
    assert_true(contains(resp, rl, "failed"));
    assert_int_equal(cc_get(&valve, w.rt, "/actions", NULL, body, sizeof body, &bl, &nb),
                     CL_COAP_CONTENT);
    assert_int_equal(actions_of(body, bl, ids, NULL, NULL), 3); /* "hot" still fired */

    /* an event type a rule names cannot go; an unused one can, and only by an admin */
    assert_int_equal(cc_request(&w.owner, w.rt, CL_COAP_DELETE, "/event-types/temp", NULL, 0, resp,
                                sizeof resp, &rl),
                     CL_COAP_CODE(4, 9));
    assert_int_equal(evtype_add(&w, "door", NULL), CL_COAP_CREATED);
    assert_int_equal(cc_request(&sensor, w.rt, CL_COAP_DELETE, "/event-types/door", NULL, 0, resp,
                                sizeof resp, &rl),
                     CL_COAP_FORBIDDEN);
    assert_int_equal(cc_request(&w.owner, w.rt, CL_COAP_DELETE, "/event-types/door", NULL, 0, resp,
                                sizeof resp, &rl),
                     CL_COAP_DELETED);
    assert_int_equal(cc_get(&w.owner, w.rt, "/event-types", NULL, resp, sizeof resp, &rl, &nb),
                     CL_COAP_CONTENT);
    assert_false(contains(resp, rl, "door"));
    cc_free(&sensor);
    cc_free(&valve);
    world_free(&w);
}


static size_t read_file(const char *path, uint8_t *out, size_t size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(out, 1, size, f);
    assert_true(n > 0 && n < size);
    fclose(f);
    return n;
}

/* POST /scenarios {"name", "template", "signature"?, "params"} */
static int install(world_t *w, const char *name, const uint8_t *tmpl, size_t tl, const uint8_t *sig,
                   size_t sl, const char *params_json, uint8_t *resp, size_t size, size_t *rl)
{
    static uint8_t body[70000];
    uint8_t params[512];
    size_t pl = jcbor(params_json, params, sizeof params), len;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, sig != NULL ? 4 : 3);
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr_z(&e, name);
    cl_cbor_enc_tstr_z(&e, "template");
    cl_cbor_enc_bstr(&e, tmpl, tl);
    if (sig != NULL) {
        cl_cbor_enc_tstr_z(&e, "signature");
        cl_cbor_enc_bstr(&e, sig, sl);
    }
    cl_cbor_enc_tstr_z(&e, "params");
    cl_cbor_enc_raw(&e, params, pl);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    return cc_request(&w->owner, w->rt, CL_COAP_POST, "/scenarios", body, len, resp, size, rl);
}

/* Scenario templates: atomic install, signatures, the vacant-home scenario end to end, removal. */
static void test_scenarios(void **state)
{
    (void)state;
    world_t w;
    static uint8_t tmpl[65536], resp[16384];
    uint8_t body[2048], sig[512];
    size_t tl, rl, bl, sl;
    cc_peer_t phone, planner, valve, publisher;
    cl_oscore_req_t oreq;
    bool has_obs;
    uint64_t ids[8];
    uint8_t type;
    unsigned nb;
    const char *wifi[] = {"wifi.status", NULL}, *presence[] = {"planner.presence", NULL},
               *none[] = {"none", NULL};

    world_init(&w);
    provision(&w);
    tl = read_file(CL_SOURCE_DIR "/examples/scenarios/vacant-home-eco.json", tmpl, sizeof tmpl);
    enroll_as(&w, &phone, 21, "phone", wifi);
    enroll_as(&w, &planner, 22, "planner", presence);
    enroll_as(&w, &valve, 23, "valve", none);
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_POST, "/clients/3/groups",
                          "{\"groups\":[\"valves\"]}", resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);

    /* all or nothing: a rule already named like one of the scenario's refuses the install */
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_PUT, "/action-types/x", "{}", resp, sizeof resp,
                          &rl),
                     CL_COAP_CREATED);
    assert_int_equal(jreq(&w.owner, w.rt, CL_COAP_PUT, "/rules/home.eco-when-away",
                          "{\"rule\":{\"name\":\"home.eco-when-away\",\"on\":[\"*\"],\"then\":[{"
                          "\"action\":\"x\",\"target\":1,\"properties\":{}}]}}",
                          resp, sizeof resp, &rl),
                     CL_COAP_CREATED);
    assert_int_equal(install(&w, "home", tmpl, tl, NULL, 0, "{\"phone\":1,\"planner\":2}", resp,
                             sizeof resp, &rl),
                     CL_COAP_CODE(4, 9));
    assert_int_equal(cc_get(&w.owner, w.rt, "/event-types", NULL, resp, sizeof resp, &rl, &nb),
                     CL_COAP_CONTENT);
    assert_false(contains(resp, rl, "wifi.status")); /* nothing of it was created */
    assert_int_equal(cc_request(&w.owner, w.rt, CL_COAP_DELETE, "/rules/home.eco-when-away", NULL,
                                0, resp, sizeof resp, &rl),
                     CL_COAP_DELETED);
    /* a missing required parameter says which */
    assert_int_equal(install(&w, "home", tmpl, tl, NULL, 0, "{\"phone\":1}", resp, sizeof resp,
                             &rl),
                     CL_COAP_BAD_REQUEST);
    assert_true(contains(resp, rl, "planner"));
    /* unsigned: installs, listed as unsigned */
    assert_int_equal(install(&w, "home", tmpl, tl, NULL, 0, "{\"phone\":1,\"planner\":2}", resp,
                             sizeof resp, &rl),
                     CL_COAP_CREATED);
    assert_true(contains(resp, rl, "home.eco-when-away"));
    assert_int_equal(cc_get(&w.owner, w.rt, "/scenarios", NULL, resp, sizeof resp, &rl, &nb),
                     CL_COAP_CONTENT);
    assert_true(contains(resp, rl, "vacant-home-eco"));

    /* the valve reacts: eco once both say nobody is home, comfort when the phone is back */
    assert_int_equal(cc_observe(&valve, w.rt, "/actions", 0, &oreq, body, sizeof body, &bl, &has_obs),
                     CL_COAP_CONTENT);
    size_t sent = lh_sent_count(w.lh);
    assert_int_equal(jreq(&phone, w.rt, CL_COAP_POST, "/events",
                          "{\"type\":\"wifi.status\",\"properties\":{\"connected\":false,\"ssid\":"
                          "\"home\"}}",
                          resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_int_equal(lh_sent_count(w.lh), sent); /* undecided: the planner has not spoken */
    assert_int_equal(jreq(&planner, w.rt, CL_COAP_POST, "/events",
                          "{\"type\":\"planner.presence\",\"properties\":{\"someone_home\":false}}",
                          resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_int_equal(last_notification(&w, &valve, &oreq, sent, body, sizeof body, &bl, &type),
                     CL_COAP_CONTENT);
    assert_int_equal(actions_of(body, bl, ids, NULL, NULL), 1);
    assert_true(contains(body, bl, "eco"));
    char ack[64];
    snprintf(ack, sizeof ack, "{\"ids\":[%llu]}", (unsigned long long)ids[0]);
    assert_int_equal(jreq(&valve, w.rt, CL_COAP_POST, "/actions/ack", ack, resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    sent = lh_sent_count(w.lh);
    assert_int_equal(jreq(&phone, w.rt, CL_COAP_POST, "/events",
                          "{\"type\":\"wifi.status\",\"properties\":{\"connected\":true,\"ssid\":"
                          "\"home\"}}",
                          resp, sizeof resp, &rl),
                     CL_COAP_CHANGED);
    assert_int_equal(last_notification(&w, &valve, &oreq, sent, body, sizeof body, &bl, &type),
                     CL_COAP_CONTENT);
    assert_true(contains(body, bl, "comfort"));
    /* a device may not install scenarios */
    assert_int_equal(jreq(&valve, w.rt, CL_COAP_POST, "/scenarios", "{\"name\":\"x\"}", resp,
                          sizeof resp, &rl),
                     CL_COAP_FORBIDDEN);

    /* signed templates: checked against the publisher the owner registered */
    cc_init(&publisher, 29);
    assert_int_equal(cl_scn_sign(&publisher.crypto, publisher.key, "acme-heating", 12, tmpl, tl,
                                 sig, sizeof sig, &sl),
                     CL_OK);
    assert_int_equal(install(&w, "away", tmpl, tl, sig, sl, "{\"phone\":1,\"planner\":2}", resp,
                             sizeof resp, &rl),
                     CL_COAP_FORBIDDEN); /* publisher unknown yet */
    assert_true(has_error(resp, rl, "unknown-publisher"));
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, "key");
    cl_cbor_enc_bstr(&e, publisher.pub, 65);
    assert_int_equal(cl_cbor_enc_finish(&e, &bl), CL_OK);
    assert_int_equal(cc_request(&valve, w.rt, CL_COAP_PUT, "/publishers/acme-heating", body, bl,
                                resp, sizeof resp, &rl),
                     CL_COAP_FORBIDDEN);
    assert_int_equal(cc_request(&w.owner, w.rt, CL_COAP_PUT, "/publishers/acme-heating", body, bl,
                                resp, sizeof resp, &rl),
                     CL_COAP_CREATED);
    tmpl[40] ^= 1; /* tampered after signing */
    assert_int_equal(install(&w, "away", tmpl, tl, sig, sl, "{\"phone\":1,\"planner\":2}", resp,
                             sizeof resp, &rl),
                     CL_COAP_FORBIDDEN);
    assert_true(has_error(resp, rl, "bad-signature"));
    tmpl[40] ^= 1;
    assert_int_equal(install(&w, "away", tmpl, tl, sig, sl, "{\"phone\":1,\"planner\":2}", resp,
                             sizeof resp, &rl),
                     CL_COAP_CREATED);
    assert_true(contains(resp, rl, "acme-heating"));

    /* removal: the rules go; types another scenario's rule still names stay */
    assert_int_equal(cc_request(&w.owner, w.rt, CL_COAP_DELETE, "/scenarios/home", NULL, 0, resp,
                                sizeof resp, &rl),
                     CL_COAP_DELETED);
    assert_int_equal(cc_get(&w.owner, w.rt, "/rules/home.eco-when-away", NULL, resp, sizeof resp,
                            &rl, &nb),
                     CL_COAP_NOT_FOUND);
    assert_int_equal(cc_get(&w.owner, w.rt, "/event-types", NULL, resp, sizeof resp, &rl, &nb),
                     CL_COAP_CONTENT);
    assert_true(contains(resp, rl, "wifi.status"));
    assert_int_equal(cc_request(&w.owner, w.rt, CL_COAP_DELETE, "/scenarios/away", NULL, 0, resp,
                                sizeof resp, &rl),
                     CL_COAP_DELETED);
    /* survives a restart as removed */
    cl_runtime_close(w.rt);
    w.rt = NULL;
    assert_int_equal(rt_open(&w), CL_OK);
    assert_int_equal(cc_connect(&w.owner, w.rt), CL_OK);
    assert_int_equal(cc_get(&w.owner, w.rt, "/scenarios", NULL, resp, sizeof resp, &rl, &nb),
                     CL_COAP_CONTENT);
    assert_false(contains(resp, rl, "vacant-home-eco"));
    cc_free(&publisher);
    cc_free(&phone);
    cc_free(&planner);
    cc_free(&valve);
    world_free(&w);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "process") == 0)
        g_kind = CL_RUNTIME_PROCESS;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_core_evidence),
        cmocka_unit_test(test_provision_enroll_revoke_restart),
        cmocka_unit_test(test_hijacked_core),
        cmocka_unit_test(test_lying_host),
        cmocka_unit_test(test_sealing_across_builds),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_wrong_clock),
        cmocka_unit_test(test_enrollee_flood),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_scenarios),
    };
    printf("runtime: %s\n", g_kind == CL_RUNTIME_PROCESS ? "process" : "sim");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
