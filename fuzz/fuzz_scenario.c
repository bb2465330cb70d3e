/*
 * fuzz_scenario.c - libFuzzer harness for scenario templates
 * (core/model/scenario.c).
 *
 * Input: byte 0 picks one of the fixed parameter maps below (none; the
 * parameters of examples/scenarios/vacant-home-eco.json, given sparsely or
 * all; those of smart-meter-regions.json; a few of our own), the rest is
 * the template as CBOR (what cl_json_to_cbor makes of a template file).
 * Invariants checked with abort():
 * - cl_scn_instantiate returns CL_OK or one of the documented refusals; a
 *   refusal comes with a reason and leaves the plan all zero (nothing
 *   allocated: LeakSanitizer checks the rest);
 * - a plan has 1..CL_SCN_MAX_OBJECTS objects, each with a non-empty
 *   NUL-terminated name, a kind and a document that is one well-formed CBOR
 *   map; rule names start with "<instance>." and pass cl_eca_check_rule
 *   under that name; the parameter map is one well-formed CBOR map;
 * - instantiating again gives the same plan, byte for byte;
 * - cl_scn_sig_kid on the whole input either fails or returns a kid inside it.
 * Links cloister_model (and through it the engine and the JS sandbox).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "eca.h"
#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define N_PARAM_SETS 6
static uint8_t params[N_PARAM_SETS][160];
static size_t params_len[N_PARAM_SETS];

static void build_params(void)
{
    cl_cbor_enc_t e;
    for (int i = 0; i < N_PARAM_SETS; i++) {
        cl_cbor_enc_init(&e, params[i], sizeof params[i]);
        switch (i) {
        case 0: /* none: defaults only */ cl_cbor_enc_map(&e, 0); break;
        case 1: /* vacant-home-eco, required ones */
            cl_cbor_enc_map(&e, 2);
            cl_cbor_enc_tstr_z(&e, "phone");
            cl_cbor_enc_uint(&e, 3);
            cl_cbor_enc_tstr_z(&e, "planner");
            cl_cbor_enc_uint(&e, 4);
            break;
        case 2: /* smart-meter-regions */
            cl_cbor_enc_map(&e, 2);
            cl_cbor_enc_tstr_z(&e, "dashboard");
            cl_cbor_enc_uint(&e, 9);
            cl_cbor_enc_tstr_z(&e, "every");
            cl_cbor_enc_double(&e, 3.0);
            break;
        case 3: /* vacant-home-eco, all of them */
            cl_cbor_enc_map(&e, 6);
            cl_cbor_enc_tstr_z(&e, "phone");
            cl_cbor_enc_uint(&e, 12);
            cl_cbor_enc_tstr_z(&e, "planner");
            cl_cbor_enc_double(&e, 13.0);
            cl_cbor_enc_tstr_z(&e, "valves");
            cl_cbor_enc_tstr_z(&e, "@upstairs");
            cl_cbor_enc_tstr_z(&e, "home_ssid");
            cl_cbor_enc_tstr_z(&e, "caf\xc3\xa9 \"5G\"\n\xe2\x80\xa8");
            cl_cbor_enc_tstr_z(&e, "eco");
            cl_cbor_enc_double(&e, 16.5);
            cl_cbor_enc_tstr_z(&e, "comfort");
            cl_cbor_enc_int(&e, 22);
            break;
        case 4: /* short names of our own (the tests' templates) */
            cl_cbor_enc_map(&e, 3);
            cl_cbor_enc_tstr_z(&e, "c");
            cl_cbor_enc_uint(&e, 7);
            cl_cbor_enc_tstr_z(&e, "target");
            cl_cbor_enc_uint(&e, 1);
            cl_cbor_enc_tstr_z(&e, "n");
            cl_cbor_enc_double(&e, -0.1);
            break;
        default: /* a parameter no template declares, and a wrong type */
            cl_cbor_enc_map(&e, 2);
            cl_cbor_enc_tstr_z(&e, "phone");
            cl_cbor_enc_tstr_z(&e, "three");
            cl_cbor_enc_tstr_z(&e, "zz");
            cl_cbor_enc_bool(&e, true);
            break;
        }
        CHECK(cl_cbor_enc_finish(&e, &params_len[i]) == CL_OK);
    }
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static int one_map(const uint8_t *p, size_t len)
{
    size_t items = 0;
    return p != NULL && len > 0 && cl_cbor_validate_seq(p, len, &items) == CL_OK && items == 1 &&
           (p[0] & 0xe0) == 0xa0;
}

static void check_plan(const cl_scn_plan_t *plan, const char *instance)
{
    size_t il = strlen(instance);
    CHECK(plan->n_objects >= 1 && plan->n_objects <= CL_SCN_MAX_OBJECTS);
    CHECK(memchr(plan->scenario, 0, sizeof plan->scenario) != NULL && plan->scenario[0] != 0);
    CHECK(memchr(plan->version, 0, sizeof plan->version) != NULL && plan->version[0] != 0);
    CHECK(memchr(plan->publisher, 0, sizeof plan->publisher) != NULL);
    CHECK(one_map(plan->params, plan->params_len));
    for (size_t i = 0; i < plan->n_objects; i++) {
        const cl_scn_object_t *o = &plan->objects[i];
        CHECK(o->kind == CL_SCN_EVENT_TYPE || o->kind == CL_SCN_ACTION_TYPE ||
              o->kind == CL_SCN_RULE);
        CHECK(memchr(o->name, 0, sizeof o->name) != NULL && o->name[0] != 0);
        CHECK(one_map(o->doc, o->doc_len));
        if (o->kind == CL_SCN_RULE) {
            const char *name;
            size_t nl;
            char why[CL_ECA_WHY_MAX];
            CHECK(strncmp(o->name, instance, il) == 0 && o->name[il] == '.');
            CHECK(cl_eca_check_rule(o->doc, o->doc_len, &name, &nl, why, sizeof why) == CL_OK);
            CHECK(nl == strlen(o->name) && memcmp(name, o->name, nl) == 0);
        }
    }
}

static int same_plan(const cl_scn_plan_t *a, const cl_scn_plan_t *b)
{
    if (a->n_objects != b->n_objects || a->params_len != b->params_len ||
        memcmp(a->params, b->params, a->params_len) != 0 || strcmp(a->scenario, b->scenario) ||
        strcmp(a->version, b->version) || strcmp(a->publisher, b->publisher))
        return 0;
    for (size_t i = 0; i < a->n_objects; i++) {
        const cl_scn_object_t *x = &a->objects[i], *y = &b->objects[i];
        if (x->kind != y->kind || strcmp(x->name, y->name) != 0 || x->doc_len != y->doc_len ||
            memcmp(x->doc, y->doc, x->doc_len) != 0)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static cl_scn_plan_t plan, again;
    static const char instance[] = "fz";
    char why[CL_SCN_WHY_MAX];

    if (!ready) {
        build_params();
        ready = 1;
    }
    if (size > 0) {
        const char *kid;
        size_t kid_len;
        if (cl_scn_sig_kid(data, size, &kid, &kid_len) == CL_OK)
            CHECK(kid_len >= 1 && kid_len <= CL_SCN_NAME_MAX && (const uint8_t *)kid >= data &&
                  (const uint8_t *)kid + kid_len <= data + size);
    }
    if (size < 1)
        return 0;
    unsigned sel = data[0] % N_PARAM_SETS;
    const uint8_t *tmpl = data + 1;
    size_t tl = size - 1;

    why[0] = 0;
    cl_status_t st = cl_scn_instantiate(tmpl, tl, params[sel], params_len[sel], instance,
                                        sizeof instance - 1, &plan, why, sizeof why);
    CHECK(memchr(why, 0, sizeof why) != NULL);
    if (st != CL_OK) {
        CHECK(st == CL_ERR_BAD_INPUT || st == CL_ERR_LIMIT || st == CL_ERR_FULL);
        CHECK(why[0] != 0);
        CHECK(all_zero(&plan, sizeof plan));
        return 0;
    }
    check_plan(&plan, instance);
    CHECK(cl_scn_instantiate(tmpl, tl, params[sel], params_len[sel], instance, sizeof instance - 1,
                             &again, why, sizeof why) == CL_OK);
    CHECK(same_plan(&plan, &again));
    cl_scn_plan_free(&again);
    cl_scn_plan_free(&plan);
    CHECK(all_zero(&plan, sizeof plan));
    return 0;
}
