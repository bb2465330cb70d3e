/*
 * fuzz_ngsi_request.c - libFuzzer harness for the NGSI-v2 facade's request
 * parsing and validation (host/ngsi/ngsi_doc.c), the entry points every
 * request body, query string and tenancy header of the untrusted broker
 * goes through before anything is stored.
 *
 * Input: byte 0 selects what the rest is (mod 8):
 *   0 entity body (normalized)   1 entity body (keyValues)
 *   2 /attrs body                3 POST /v2/op/update body
 *   4 subscription body          5 query string "k=v&k=v..." (GET /v2/entities)
 *   6 "service\npath" headers    7 one attribute body (PUT /attrs/{name})
 * Invariants checked (abort on violation): a parsed entity's stored
 * document re-parses as an object of {type, value, metadata} attributes;
 * the spliced normalized rendering equals the one built from the tree; a
 * subscription renders, re-reads from its stored form and renders the same
 * again; a normalized service path matches itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngsi_internal.h"

#define MAX_INPUT 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_ngsi_request: invariant broken: %s\n", what);
        abort();
    }
}

static void check_stored(const cJSON *attrs)
{
    size_t len = 0;
    char *doc = ngsi_json_print(attrs, &len);
    if (doc == NULL)
        return; /* out of memory */
    ngsi_err_t e;
    cJSON *back = ngsi_json_parse(doc, len, 64, NULL, &e);
    check(back != NULL && cJSON_IsObject(back), "stored document re-parses");
    for (const cJSON *a = back->child; a != NULL; a = a->next) {
        check(ngsi_name_ok(a->string), "attribute name valid");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "type");
        check(cJSON_IsString(t) && ngsi_name_ok(t->valuestring), "attribute type valid");
        check(cJSON_GetObjectItemCaseSensitive(a, "value") != NULL, "attribute value present");
        check(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(a, "metadata")), "metadata object");
    }
    /* the fast (spliced) and the slow (tree) renderings agree */
    const char *names[512];
    size_t n = 0;
    for (const cJSON *a = back->child; a != NULL && n < 512; a = a->next)
        names[n++] = a->string;
    if (n > 0 && n < 512) {
        ngsi_buf_t f, s;
        nb_init(&f, (size_t)16 << 20);
        nb_init(&s, (size_t)16 << 20);
        ngsi_render_t fast = {.with_id = true};
        ngsi_render_t slow = {.with_id = true, .nattrs = n, .attrs = names};
        check(ngsi_render_entity(&f, "E", "T", doc, len, &fast), "fast render");
        check(ngsi_render_entity(&s, "E", "T", doc, len, &slow), "slow render");
        if (!f.failed && !s.failed)
            check(f.len == s.len && memcmp(f.p, s.p, f.len) == 0, "renderings agree");
        ngsi_render_t kv = {.with_id = false, .keyvalues = true};
        nb_free(&f);
        check(ngsi_render_entity(&f, "E", "T", doc, len, &kv), "keyValues render");
        nb_free(&f);
        nb_free(&s);
    }
    cJSON_Delete(back);
    cJSON_free(doc);
}

typedef struct kv {
    char *k[32], *v[32];
    size_t n;
} kv_t;

static const char *arg(void *ctx, const char *key)
{
    kv_t *a = ctx;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->k[i], key) == 0)
            return a->v[i];
    return NULL;
}

static void fuzz_query(char *s)
{
    kv_t a = {.n = 0};
    for (char *tok = strtok(s, "&"); tok != NULL && a.n < 32; tok = strtok(NULL, "&")) {
        char *eq = strchr(tok, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        a.k[a.n] = tok;
        a.v[a.n] = eq + 1;
        a.n++;
    }
    ngsi_list_q_t q;
    ngsi_err_t e;
    for (int kind = NGSI_Q_LIST; kind <= NGSI_Q_ONE; kind++) {
        if (ngsi_list_q_parse(arg, &a, kind, &q, &e)) {
            check(q.limit >= 1 && q.limit <= NGSI_MAX_LIMIT, "limit bounded");
            check(q.nids <= NGSI_MAX_LIST && q.nattrs <= NGSI_MAX_LIST, "lists bounded");
            static const char *ids[] = {"Room1", "urn:ngsi-ld:Meter:42", "aaaaaaaaaaaaaaaaaaaa"};
            for (size_t i = 0; i < 3; i++) {
                if (q.has_idre)
                    (void)regexec(&q.idre, ids[i], 0, NULL, 0);
                if (q.has_typere)
                    (void)regexec(&q.typere, ids[i], 0, NULL, 0);
            }
        } else {
            check(e.status == 400 || e.status == 500, "query error status");
        }
        ngsi_list_q_free(&q);
    }
}

static void fuzz_tenancy(char *s)
{
    char *nl = strchr(s, '\n');
    const char *path = nl != NULL ? nl + 1 : NULL;
    if (nl != NULL)
        *nl = '\0';
    char svc[NGSI_MAX_SERVICE + 1], p[NGSI_PATH_SIZE];
    ngsi_err_t e;
    if (ngsi_service_parse(s, svc, &e))
        check(strlen(svc) <= NGSI_MAX_SERVICE, "service bounded");
    if (ngsi_path_parse_update(path, p, &e)) {
        check(p[0] == '/' && strchr(p, '#') == NULL, "update path shape");
        check(ngsi_path_match(p, p), "path matches itself");
        ngsi_paths_t ps;
        check(ngsi_path_parse_query(p, &ps, &e), "an update path is a query path");
        check(ngsi_paths_match(&ps, p), "query of a path matches it");
    }
    ngsi_paths_t ps;
    if (ngsi_path_parse_query(path, &ps, &e))
        check(ps.n <= NGSI_MAX_QUERY_PATHS, "paths bounded");
    if (ngsi_path_parse_sub(path, p, &e))
        check(p[0] == '/', "subscription path shape");
    regex_t re;
    if (ngsi_regex_compile(s, &re, &e)) {
        (void)regexec(&re, "Room1", 0, NULL, 0);
        regfree(&re);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_INPUT)
        return 0;
    unsigned mode = data[0] % 8;
    size_t n = size - 1;
    char *s = malloc(n + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data + 1, n);
    s[n] = '\0';
    ngsi_limits_t lim;
    ngsi_limits_default(&lim);
    lim.max_attrs = 64;
    ngsi_err_t e;
    if (mode == 5) {
        fuzz_query(s);
        free(s);
        return 0;
    }
    if (mode == 6) {
        fuzz_tenancy(s);
        free(s);
        return 0;
    }
    size_t cost = 0;
    cJSON *j = ngsi_json_parse(s, n, lim.max_depth, &cost, &e);
    if (j == NULL) {
        check(e.status == 400, "parse error is 400");
        free(s);
        return 0;
    }
    check(cost >= n, "cost covers the text");
    ngsi_ent_in_t en;
    switch (mode) {
    case 0:
    case 1:
    case 2: {
        unsigned flags = mode == 1 ? NGSI_F_KEYVALUES : mode == 2 ? NGSI_F_ATTRS_ONLY : 0;
        if (ngsi_entity_parse(j, flags, &lim, &en, &e)) {
            check(mode == 2 ? en.id == NULL : ngsi_name_ok(en.id), "entity id");
            check(en.type == NULL || ngsi_name_ok(en.type), "entity type");
            check(en.nattrs <= lim.max_attrs, "attribute count bounded");
            check_stored(en.attrs);
            ngsi_ent_in_free(&en);
        } else {
            check(e.status == 400 || e.status == 413 || e.status == 500, "entity error status");
        }
        break;
    }
    case 3: {
        ngsi_action_t act;
        ngsi_ent_in_t *ents = NULL;
        size_t cnt = 0;
        if (ngsi_batch_parse(j, 0, &lim, &act, &ents, &cnt, &e)) {
            check(cnt >= 1 && cnt <= lim.max_batch_entities, "batch size bounded");
            for (size_t i = 0; i < cnt; i++) {
                check(ngsi_name_ok(ents[i].id), "batch entity id");
                if (act != NGSI_ACT_DELETE) /* delete lists names only */
                    check_stored(ents[i].attrs);
            }
            ngsi_ents_free(ents, cnt);
        } else {
            check(ents == NULL, "nothing returned on failure");
        }
        break;
    }
    case 4: {
        ngsi_sub_t *sub = ngsi_sub_parse(j, false, &lim, &e);
        if (sub != NULL) {
            memcpy(sub->id, "00112233445566778899aabb", NGSI_SUB_ID_LEN + 1);
            ngsi_buf_t a, b;
            nb_init(&a, (size_t)16 << 20);
            nb_init(&b, (size_t)16 << 20);
            ngsi_sub_render(&a, sub, 0);
            check(!a.failed, "subscription renders");
            cJSON *back = ngsi_json_parse(a.p, a.len, 64, NULL, &e);
            check(back != NULL, "rendered subscription is JSON");
            ngsi_sub_t *sub2 = ngsi_sub_parse(back, true, &lim, &e);
            check(sub2 != NULL, "stored subscription reads back");
            ngsi_sub_render(&b, sub2, 0);
            check(a.len == b.len && memcmp(a.p, b.p, a.len) == 0, "stable stored form");
            (void)ngsi_sub_matches(sub, "Room1", "Room");
            cJSON_Delete(back);
            ngsi_sub_free(sub2);
            ngsi_sub_free(sub);
            nb_free(&a);
            nb_free(&b);
        } else {
            check(e.status == 400 || e.status == 500, "subscription error status");
        }
        break;
    }
    default: {
        cJSON *a = ngsi_attr_parse("attr", j, 0, &lim, &e);
        if (a != NULL) {
            cJSON *o = cJSON_CreateObject();
            if (o != NULL) {
                cJSON_AddItemToObject(o, "attr", a);
                check_stored(o);
                cJSON_Delete(o);
            } else {
                cJSON_Delete(a);
            }
        }
        break;
    }
    }
    cJSON_Delete(j);
    free(s);
    return 0;
}
