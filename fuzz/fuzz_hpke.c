/*
 * fuzz_hpke.c - libFuzzer harness for the HPKE recipient (lib/hpke.c):
 * cl_hpke_setup_r, cl_hpke_open, cl_hpke_export and cl_hpke_open_once on
 * input-chosen suite ids, mode, enc, info, psk, psk_id, pkS, aad and
 * ciphertexts, with fixed recipient keys.
 *
 * The recipient keys are the skRm of the 20 RFC 9180 vectors of
 * tests/vectors/hpke-rfc9180.json and hpke-rfc9180-extra.json (A.1, A.2,
 * A.3, A.5, A.7, all modes); the table below carries, per vector, what a
 * recipient sees (copied from those files) and the first three ciphertexts.
 * The harness checks once, at start-up, that every vector opens (so a wrong
 * value aborts at once).
 *
 * Input layout (lengths big-endian; a field longer than what is left of the
 * input is cut short):
 *   [0]      bits 0-4: recipient key (vector index mod 20); bit 7: context
 *            mode (setup + up to 4 opens + export), else single-shot open
 *   [1..6]   kem_id, kdf_id, aead_id
 *   [7]      mode
 *   then six fields, each 2-byte length + bytes: enc, info, psk, psk_id,
 *   pkS, exporter_context; then messages, each 2-byte length + aad, 2-byte
 *   length + ciphertext (single-shot: the first message only).
 *
 * Invariants (abort() when broken):
 *  - every status is one HPKE documents for bad input (CL_OK, BAD_INPUT,
 *    AUTH, UNSUPPORTED, INVALID_ARG, LIMIT); never CRYPTO or anything else;
 *  - an open succeeds only when recipient key, suite, mode, enc, info, psk,
 *    psk_id (and pkS in the auth modes), aad and ciphertext are exactly
 *    those of a vector at that sequence number, and then gives its plaintext;
 *  - a failed open leaves the plaintext buffer wiped; a failed setup leaves
 *    the context zeroed; a freed context is zeroed;
 *  - after a successful setup, Export works, and equals the vector's value
 *    for a setup that is exactly a vector's (exporter_context "", L = 32);
 *  - no key handle outlives an input (a counting wrapper around the OpenSSL
 *    provider sees every handle created destroyed again).
 *
 * Seeds: built from the table by this file compiled with
 * -DFUZZ_HPKE_WRITE_CORPUS, which also checks each seed's outcome:
 *
 *   cmake --build build --target cloister_lib cloister_crypto_openssl
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -DFUZZ_HPKE_WRITE_CORPUS -Iinclude \
 *      fuzz/fuzz_hpke.c build/lib/libcloister_crypto_openssl.a \
 *      build/lib/libcloister_lib.a -lcrypto -o /tmp/gen_hpke_corpus
 *   /tmp/gen_hpke_corpus fuzz/corpus/fuzz_hpke
 *
 * Two seeds per vector: single-shot (succeeds for the 16 vectors with
 * encryptions) and context mode (export equal; 3 opens succeed where there
 * are encryptions); and refused variants: a flipped ciphertext bit, a
 * message out of order, an off-curve and a compressed P-256 enc, a low-order X25519 enc, a wrong
 * pkS, a wrong psk, unsupported kem / kdf / aead ids and mode, a missing psk, an info over
 * CL_HPKE_MAX_INPUT, a key of the other curve; and input shapes (too short, cut inside a field,
 * four messages, an over-long exporter_context). The found_* inputs were kept from a libFuzzer run
 * (each reaches coverage edges the generated seeds do not); the writer
 * leaves files it does not write alone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto_openssl.h"
#include "cloister/hpke.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* What a recipient sees of an RFC 9180 vector (hex), and its first three messages. */
typedef struct hvec {
    const char *name;
    uint16_t kem, aead;
    uint8_t mode;
    const char *skr, *enc, *info, *psk, *psk_id, *pks;
    const char *aad[3];
    const char *ct[3];
    const char *pt;
    const char *exp; /* Export("", 32) */
} hvec_t;

static const hvec_t vecs[] = {
    {"A.1.1",
     0x0020,
     0x0001,
     0,
     /* skr */ "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
     /* enc */ "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */ "",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a9"
       "6d8770ac83d07bea87e13c512a"),
      ("af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab25"
       "1c03d0c22a56b8ca42c2063b84"),
      ("498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb7251649158"
       "8d96a19ad4a683518973dcc180")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee"},
    {"A.1.2",
     0x0020,
     0x0001,
     1,
     /* skr */ "c5eb01eb457fe6c6f57577c5413b931550a162c71a03ac8d196babbd4e5ce0fd",
     /* enc */ "0ad0950d9fb9588e59690b74f1237ecdf1d775cd60be2eca57af5a4b0471c91b",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */ "",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("e52c6fed7f758d0cf7145689f21bc1be6ec9ea097fef4e959440012f4feb73fb"
       "611b946199e681f4cfc34db8ea"),
      ("49f3b19b28a9ea9f43e8c71204c00d4a490ee7f61387b6719db765e948123b45"
       "b61633ef059ba22cd62437c8ba"),
      ("257ca6a08473dc851fde45afd598cc83e326ddd0abe1ef23baa3baa4dd8cde99"
       "fce2c1e8ce687b0b47ead1adc9")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "dff17af354c8b41673567db6259fd6029967b4e1aad13023c2ae5df8f4f43bf6"},
    {"A.1.3",
     0x0020,
     0x0001,
     2,
     /* skr */ "fdea67cf831f1ca98d8e27b1f6abeb5b7745e9d35348b80fa407ff6958f9137e",
     /* enc */ "23fb952571a14a25e3d678140cd0e5eb47a0961bb18afcf85896e5453c312e76",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */ "8b0c70873dc5aecb7f9ee4e62406a397b350e57012be45cf53b7105ae731790b",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("5fd92cc9d46dbf8943e72a07e42f363ed5f721212cd90bcfd072bfd9f44e06b8"
       "0fd17824947496e21b680c141b"),
      ("d3736bb256c19bfa93d79e8f80b7971262cb7c887e35c26370cfed62254369a1"
       "b52e3d505b79dd699f002bc8ed"),
      ("122175cfd5678e04894e4ff8789e85dd381df48dcaf970d52057df2c9acc3b12"
       "1313a2bfeaa986050f82d93645")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "28c70088017d70c896a8420f04702c5a321d9cbf0279fba899b59e51bac72c85"},
    {"A.1.4",
     0x0020,
     0x0001,
     3,
     /* skr */ "cb29a95649dc5656c2d054c1aa0d3df0493155e9d5da6d7e344ed8b6a64a9423",
     /* enc */ "820818d3c23993492cc5623ab437a48a0a7ca3e9639c140fe1e33811eb844b7c",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */ "2bfb2eb18fcad1af0e4f99142a1c474ae74e21b9425fc5c589382c69b50cc57e",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("a84c64df1e11d8fd11450039d4fe64ff0c8a99fca0bd72c2d4c3e0400bc14a40"
       "f27e45e141a24001697737533e"),
      ("4d19303b848f424fc3c3beca249b2c6de0a34083b8e909b6aa4c3688505c05ff"
       "e0c8f57a0a4c5ab9da127435d9"),
      ("0c085a365fbfa63409943b00a3127abce6e45991bc653f182a80120868fc507e"
       "9e4d5e37bcc384fc8f14153b24")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "08f7e20644bb9b8af54ad66d2067457c5f9fcb2a23d9f6cb4445c0797b330067"},
    {"A.2.1",
     0x0020,
     0x0003,
     0,
     /* skr */ "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
     /* enc */ "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */ "",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db"
       "21993c62ce81883d2dd1b51a28"),
      ("6b53c051e4199c518de79594e1c4ab18b96f081549d45ce015be002090bb119e"
       "85285337cc95ba5f59992dc98c"),
      ("71146bd6795ccc9c49ce25dda112a48f202ad220559502cef1f34271e0cb4b02"
       "b4f10ecac6f48c32f878fae86b")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "4bbd6243b8bb54cec311fac9df81841b6fd61f56538a775e7c80a9f40160606e"},
    {"A.2.2",
     0x0020,
     0x0003,
     1,
     /* skr */ "77d114e0212be51cb1d76fa99dd41cfd4d0166b08caa09074430a6c59ef17879",
     /* enc */ "2261299c3f40a9afc133b969a97f05e95be2c514e54f3de26cbe5644ac735b04",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */ "",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("4a177f9c0d6f15cfdf533fb65bf84aecdc6ab16b8b85b4cf65a370e07fc1d78d"
       "28fb073214525276f4a89608ff"),
      ("5c3cabae2f0b3e124d8d864c116fd8f20f3f56fda988c3573b40b09997fd6c76"
       "9e77c8eda6cda4f947f5b704a8"),
      ("14958900b44bdae9cbe5a528bf933c5c990dbb8e282e6e495adf8205d19da9eb"
       "270e3a6f1e0613ab7e757962a4")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "813c1bfc516c99076ae0f466671f0ba5ff244a41699f7b2417e4c59d46d39f40"},
    {"A.2.3",
     0x0020,
     0x0003,
     2,
     /* skr */ "3ca22a6d1cda1bb9480949ec5329d3bf0b080ca4c45879c95eddb55c70b80b82",
     /* enc */ "f7674cc8cd7baa5872d1f33dbaffe3314239f6197ddf5ded1746760bfc847e0e",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */ "f0f4f9e96c54aeed3f323de8534fffd7e0577e4ce269896716bcb95643c8712b",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("ab1a13c9d4f01a87ec3440dbd756e2677bd2ecf9df0ce7ed73869b98e00c09be"
       "111cb9fdf077347aeb88e61bdf"),
      ("3265c7807ffff7fdace21659a2c6ccffee52a26d270c76468ed74202a65478bf"
       "aedfff9c2b7634e24f10b71016"),
      ("3aadee86ad2a05081ea860033a9d09dbccb4acac2ded0891da40f51d4df19925"
       "f7a767b076a5cbc9355c8fd35e")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "070cffafd89b67b7f0eeb800235303a223e6ff9d1e774dce8eac585c8688c872"},
    {"A.2.4",
     0x0020,
     0x0003,
     3,
     /* skr */ "7b36a42822e75bf3362dfabbe474b3016236408becb83b859a6909e22803cb0c",
     /* enc */ "656a2e00dc9990fd189e6e473459392df556e9a2758754a09db3f51179a3fc02",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */ "3ac5bd4dd66ff9f2740bef0d6ccb66daa77bff7849d7895182b07fb74d087c45",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("9aa52e29274fc6172e38a4461361d2342585d3aeec67fb3b721ecd63f059577c"
       "7fe886be0ede01456ebc67d597"),
      ("59460bacdbe7a920ef2806a74937d5a691d6d5062d7daafcad7db7e4d8c649ad"
       "ffe575c1889c5c2e3a49af8e3e"),
      ("5688ff6a03ba26ae936044a5c800f286fb5d1eccdd2a0f268f6ff9773b511693"
       "18d1a1466bb36263415071db00")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "c23ebd4e7a0ad06a5dddf779f65004ce9481069ce0f0e6dd51a04539ddcbd5cd"},
    {"A.3.1",
     0x0010,
     0x0001,
     0,
     /* skr */ "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2",
     /* enc */
     ("04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325a"
      "c98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18"
      "c4"),
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */ "",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f"
       "9076ac232e3ab2523f39513434"),
      ("fa6f037b47fc21826b610172ca9637e82d6e5801eb31cbd3748271affd4ecb06"
       "646e0329cbdf3c3cd655b28e82"),
      ("895cabfac50ce6c6eb02ffe6c048bf53b7f7be9a91fc559402cbc5b8dcaeb52b"
       "2ccc93e466c28fb55fed7a7fec")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "5e9bc3d236e1911d95e65b576a8a86d478fb827e8bdfe77b741b289890490d4d"},
    {"A.3.2",
     0x0010,
     0x0001,
     1,
     /* skr */ "438d8bcef33b89e0e9ae5eb0957c353c25a94584b0dd59c991372a75b43cb661",
     /* enc */
     ("04305d35563527bce037773d79a13deabed0e8e7cde61eecee403496959e89e4"
      "d0ca701726696d1485137ccb5341b3c1c7aaee90a4a02449725e744b1193b53b"
      "5f"),
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */ "",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("90c4deb5b75318530194e4bb62f890b019b1397bbf9d0d6eb918890e1fb2be1a"
       "c2603193b60a49c2126b75d0eb"),
      ("9e223384a3620f4a75b5a52f546b7262d8826dea18db5a365feb8b997180b22d"
       "72dc1287f7089a1073a7102c27"),
      ("adf9f6000773035023be7d415e13f84c1cb32a24339a32eb81df02be9ddc6abc"
       "880dd81cceb7c1d0c7781465b2")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "a115a59bf4dd8dc49332d6a0093af8efca1bcbfd3627d850173f5c4a55d0c185"},
    {"A.3.3",
     0x0010,
     0x0001,
     2,
     /* skr */ "d929ab4be2e59f6954d6bedd93e638f02d4046cef21115b00cdda2acb2a4440e",
     /* enc */
     ("042224f3ea800f7ec55c03f29fc9865f6ee27004f818fcbdc6dc68932c1e52e1"
      "5b79e264a98f2c535ef06745f3d308624414153b22c7332bc1e691cb4af4d534"
      "54"),
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */
     ("04a817a0902bf28e036d66add5d544cc3a0457eab150f104285df1e293b5c10e"
      "ef8651213e43d9cd9086c80b309df22cf37609f58c1127f7607e85f210b2804f"
      "73"),
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("82ffc8c44760db691a07c5627e5fc2c08e7a86979ee79b494a17cc3405446ac2"
       "bdb8f265db4a099ed3289ffe19"),
      ("b0a705a54532c7b4f5907de51c13dffe1e08d55ee9ba59686114b05945494d96"
       "725b239468f1229e3966aa1250"),
      ("8dc805680e3271a801790833ed74473710157645584f06d1b53ad439078d880b"
       "23e25256663178271c80ee8b7c")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "837e49c3ff629250c8d80d3c3fb957725ed481e59e2feb57afd9fe9a8c7c4497"},
    {"A.3.4",
     0x0010,
     0x0001,
     3,
     /* skr */ "bdf4e2e587afdf0930644a0c45053889ebcadeca662d7c755a353d5b4e2a8394",
     /* enc */
     ("046a1de3fc26a3d43f4e4ba97dbe24f7e99181136129c48fbe872d4743e2b131"
      "357ed4f29a7b317dc22509c7b00991ae990bf65f8b236700c82ab7c11a845114"
      "01"),
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */
     ("049f158c750e55d8d5ad13ede66cf6e79801634b7acadcad72044eac2ae1d048"
      "0069133d6488bf73863fa988c4ba8bde1c2e948b761274802b4d8012af4f13af"
      "9e"),
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("b9f36d58d9eb101629a3e5a7b63d2ee4af42b3644209ab37e0a272d44365407d"
       "b8e655c72e4fa46f4ff81b9246"),
      ("51788c4e5d56276771032749d015d3eea651af0c7bb8e3da669effffed299ea1"
       "f641df621af65579c10fc09736"),
      ("3b5a2be002e7b29927f06442947e1cf709b9f8508b03823127387223d7127034"
       "71c266efc355f1bc2036f3027c")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "595ce0eff405d4b3bb1d08308d70a4e77226ce11766e0a94c4fdb5d90025c978"},
    {"A.5.1",
     0x0010,
     0x0003,
     0,
     /* skr */ "a4d1c55836aa30f9b3fbb6ac98d338c877c2867dd3a77396d13f68d3ab150d3b",
     /* enc */
     ("04c07836a0206e04e31d8ae99bfd549380b072a1b1b82e563c935c095827824f"
      "c1559eac6fb9e3c70cd3193968994e7fe9781aa103f5b50e934b5b2f387e3812"
      "91"),
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */ "",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("6469c41c5c81d3aa85432531ecf6460ec945bde1eb428cb2fedf7a29f5a685b4"
       "ccb0d057f03ea2952a27bb458b"),
      ("f1564199f7e0e110ec9c1bcdde332177fc35c1adf6e57f8d1df24022227ffa87"
       "16862dbda2b1dc546c9d114374"),
      ("39de89728bcb774269f882af8dc5369e4f3d6322d986e872b3a8d074c7c18e85"
       "49ff3f85b6d6592ff87c3f310c")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "9b13c510416ac977b553bf1741018809c246a695f45eff6d3b0356dbefe1e660"},
    {"A.5.2",
     0x0010,
     0x0003,
     1,
     /* skr */ "12ecde2c8bc2d5d7ed2219c71f27e3943d92b344174436af833337c557c300b3",
     /* enc */
     ("04f336578b72ad7932fe867cc4d2d44a718a318037a0ec271163699cee653fa8"
      "05c1fec955e562663e0c2061bb96a87d78892bff0cc0bad7906c2d998ebe1a72"
      "46"),
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */ "",
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("21433eaff24d7706f3ed5b9b2e709b07230e2b11df1f2b1fe07b3c70d5948a53"
       "d6fa5c8bed194020bd9df0877b"),
      ("c74a764b4892072ea8c2c56b9bcd46c7f1e9ca8cb0a263f8b40c2ba59ac9c857"
       "033f176019562218769d3e0452"),
      ("dc8cd68863474d6e9cbb6a659335a86a54e036249d41acf909e738c847ff2bd3"
       "6fe3fcacda4ededa7032c0a220")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "530bbc2f68f078dccc89cc371b4f4ade372c9472bafe4601a8432cbb934f528d"},
    {"A.5.3",
     0x0010,
     0x0003,
     2,
     /* skr */ "3cb2c125b8c5a81d165a333048f5dcae29a2ab2072625adad66dbb0f48689af9",
     /* enc */
     ("040d5176aedba55bc41709261e9195c5146bb62d783031280775f32e507d79b5"
      "cbc5748b6be6359760c73cfe10ca19521af704ca6d91ff32fc0739527b9385d4"
      "15"),
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */
     ("04265529a04d4f46ab6fa3af4943774a9f1127821656a75a35fade898a9a1b01"
      "4f64d874e88cddb24c1c3d79004d3a587db67670ca357ff4fba7e8b56ec013b9"
      "8b"),
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("25881f219935eec5ba70d7b421f13c35005734f3e4d959680270f55d71e2f5cb"
       "3bd2daced2770bf3d9d4916872"),
      ("653f0036e52a376f5d2dd85b3204b55455b7835c231255ae098d09ed138719b9"
       "7185129786338ab6543f753193"),
      ("60878706117f22180c788e62df6a595bc41906096a11a9513e84f0141e43239e"
       "81a98d7a235abc64112fcb8ddd")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "56c4d6c1d3a46c70fd8f4ecda5d27c70886e348efb51bd5edeaa39ff6ce34389"},
    {"A.5.4",
     0x0010,
     0x0003,
     3,
     /* skr */ "c29fc577b7e74d525c0043f1c27540a1248e4f2c8d297298e99010a92e94865c",
     /* enc */
     ("043539917ee26f8ae0aa5f784a387981b13de33124a3cde88b94672030183110"
      "f331400115855808244ff0c5b6ca6104483ac95724481d41bdcd9f15b430ad16"
      "f6"),
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */
     ("0492cf8c9b144b742fe5a63d9a181a19d416f3ec8705f24308ad316564823c34"
      "4e018bd7c03a33c926bb271b28ef5bf28c0ca00abff249fee5ef7f33315ff34f"
      "db"),
     /* aad */ {"436f756e742d30", "436f756e742d31", "436f756e742d32"},
     /* ct */
     {("9eadfa0f954835e7e920ffe56dec6b31a046271cf71fdda55db72926e1d8fae9"
       "4cc6280fcfabd8db71eaa65c05"),
      ("e357ad10d75240224d4095c9f6150a2ed2179c0f878e4f2db8ca95d365d174d0"
       "59ff8c3eb38ea9a65cfc8eaeb8"),
      ("2fa56d00f8dd479d67a2ec3308325cf3bbccaf102a64ffccdb006bd7dcb93268"
       "5b9a7b49cdc094a85fec1da5ef")},
     /* pt */ "4265617574792069732074727574682c20747275746820626561757479",
     /* exp */ "c52b4592cd33dd38b2a3613108ddda28dcf7f03d30f2a09703f758bfa8029c9a"},
    {"A.7.1", 0x0020, 0xffff, 0,
     /* skr */ "33d196c830a12f9ac65d6e565a590d80f04ee9b19c83c87f2c170d972a812848",
     /* enc */ "e5e8f9bfff6c2f29791fc351d2c25ce1299aa5eaca78a757c0b4fb4bcd830918",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */ "",
     /* aad */ {"", "", ""},
     /* ct */ {"", "", ""},
     /* pt */ "",
     /* exp */ "7a36221bd56d50fb51ee65edfd98d06a23c4dc87085aa5866cb7087244bd2a36"},
    {"A.7.2", 0x0020, 0xffff, 1,
     /* skr */ "98f304d4ecb312689690b113973c61ffe0aa7c13f2fbe365e48f3ed09e5a6a0c",
     /* enc */ "d3805a97cbcd5f08babd21221d3e6b362a700572d14f9bbeb94ec078d051ae3d",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */ "",
     /* aad */ {"", "", ""},
     /* ct */ {"", "", ""},
     /* pt */ "",
     /* exp */ "be6c76955334376aa23e936be013ba8bbae90ae74ed995c1c6157e6f08dd5316"},
    {"A.7.3", 0x0020, 0xffff, 2,
     /* skr */ "ed88cda0e91ca5da64b6ad7fc34a10f096fa92f0b9ceff9d2c55124304ed8b4a",
     /* enc */ "5ac1671a55c5c3875a8afe74664aa8bc68830be9ded0c5f633cd96400e8b5c05",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "",
     /* psk_id */ "",
     /* pks */ "89eb1feae431159a5250c5186f72a15962c8d0debd20a8389d8b6e4996e14306",
     /* aad */ {"", "", ""},
     /* ct */ {"", "", ""},
     /* pt */ "",
     /* exp */ "83c1bac00a45ed4cb6bd8a6007d2ce4ec501f55e485c5642bd01bf6b6d7d6f0a"},
    {"A.7.4", 0x0020, 0xffff, 3,
     /* skr */ "c4962a7f97d773a47bdf40db4b01dc6a56797c9e0deaab45f4ea3aa9b1d72904",
     /* enc */ "81cbf4bd7eee97dd0b600252a1c964ea186846252abb340be47087cc78f3d87c",
     /* info */ "4f6465206f6e2061204772656369616e2055726e",
     /* psk */ "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82",
     /* psk_id */ "456e6e796e20447572696e206172616e204d6f726961",
     /* pks */ "29a5bf3867a6128bbdf8e070abe7fe70ca5e07b629eba5819af73810ee20112f",
     /* aad */ {"", "", ""},
     /* ct */ {"", "", ""},
     /* pt */ "",
     /* exp */ "dafd8beb94c5802535c22ff4c1af8946c98df2c417e187c6ccafe45335810b58"},
};

#define N_VEC (sizeof vecs / sizeof vecs[0])
#define MAX_MSGS 4

/* The vectors decoded. */
typedef struct dvec {
    uint8_t skr[32], enc[65], info[32], psk[32], psk_id[32], pks[65], aad[3][16], ct[3][64];
    uint8_t pt[64], exp[32];
    size_t skr_len, enc_len, info_len, psk_len, psk_id_len, pks_len, aad_len[3], ct_len[3];
    size_t pt_len, n_ct;
} dvec_t;

static dvec_t dv[N_VEC];
static cl_key_t keys[N_VEC];
static cl_crypto_t inner; /* the OpenSSL provider */
static cl_crypto_t wc;    /* the same behind the counting wrapper */
static cl_crypto_ops_t wops;
static cl_key_t live[32]; /* handles created through wc and not destroyed yet */
static size_t n_live, base_live;
static int inited;

/* ------------------------------------------------- counting wrapper */

static cl_status_t track(cl_status_t rc, const cl_key_t *k)
{
    if (rc == CL_OK) {
        CHECK(n_live < sizeof live / sizeof live[0]);
        live[n_live++] = *k;
    }
    return rc;
}

static cl_status_t w_aead_import(void *self, cl_aead_alg_t alg, const uint8_t *key, size_t len,
                                 cl_key_t *out)
{
    return track(inner.ops->aead_import(self, alg, key, len, out), out);
}

static cl_status_t w_key_generate(void *self, cl_key_type_t type, uint32_t usage, cl_key_t *out,
                                  uint8_t *pub, size_t pub_size, size_t *pub_len)
{
    return track(inner.ops->key_generate(self, type, usage, out, pub, pub_size, pub_len), out);
}

static cl_status_t w_import_private(void *self, cl_key_type_t type, uint32_t usage,
                                    const uint8_t *priv, size_t len, cl_key_t *out)
{
    return track(inner.ops->key_import_private(self, type, usage, priv, len, out), out);
}

static cl_status_t w_import_public(void *self, cl_key_type_t type, const uint8_t *pub, size_t len,
                                   cl_key_t *out)
{
    return track(inner.ops->key_import_public(self, type, pub, len, out), out);
}

static void w_destroy(void *self, cl_key_t k)
{
    for (size_t i = 0; i < n_live; i++) {
        if (live[i] == k) {
            live[i] = live[--n_live];
            break;
        }
    }
    inner.ops->key_destroy(self, k);
}

/* ------------------------------------------------------------ helpers */

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;

    CHECK(strlen(h) % 2 == 0 && n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = h[2 * i + (size_t)j];
            v = v << 4 | (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[i] = (uint8_t)v;
    }
    return n;
}

static int eq(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static int is_auth(uint8_t mode)
{
    return mode == CL_HPKE_MODE_AUTH || mode == CL_HPKE_MODE_AUTH_PSK;
}

/* The statuses HPKE documents for bad input. */
static int status_ok(cl_status_t rc)
{
    return rc == CL_OK || rc == CL_ERR_BAD_INPUT || rc == CL_ERR_AUTH || rc == CL_ERR_UNSUPPORTED ||
           rc == CL_ERR_INVALID_ARG || rc == CL_ERR_LIMIT;
}

static cl_hpke_params_t params_of(size_t i)
{
    const dvec_t *d = &dv[i];
    cl_hpke_params_t p;

    memset(&p, 0, sizeof p);
    p.suite.kem_id = vecs[i].kem;
    p.suite.kdf_id = CL_HPKE_KDF_HKDF_SHA256;
    p.suite.aead_id = vecs[i].aead;
    p.mode = vecs[i].mode;
    p.info = d->info;
    p.info_len = d->info_len;
    p.psk = d->psk;
    p.psk_len = d->psk_len;
    p.psk_id = d->psk_id;
    p.psk_id_len = d->psk_id_len;
    p.sender_pub = d->pks;
    p.sender_pub_len = d->pks_len;
    return p;
}

/* The vector whose recipient setup this is exactly, or NULL. */
static const dvec_t *setup_match(size_t i, const cl_hpke_params_t *p, const uint8_t *enc,
                                 size_t enc_len)
{
    const dvec_t *d = &dv[i];

    if (p->suite.kem_id != vecs[i].kem || p->suite.kdf_id != CL_HPKE_KDF_HKDF_SHA256 ||
        p->suite.aead_id != vecs[i].aead || p->mode != vecs[i].mode ||
        !eq(enc, enc_len, d->enc, d->enc_len) || !eq(p->info, p->info_len, d->info, d->info_len) ||
        !eq(p->psk, p->psk_len, d->psk, d->psk_len) ||
        !eq(p->psk_id, p->psk_id_len, d->psk_id, d->psk_id_len) ||
        (is_auth(p->mode) && !eq(p->sender_pub, p->sender_pub_len, d->pks, d->pks_len)))
        return NULL;
    return d;
}

static void init(void)
{
    if (inited)
        return;
    CHECK(cl_crypto_openssl_new(&inner, 0) == CL_OK);
    wops = *inner.ops;
    wops.name = "fuzz-counting";
    wops.aead_import = w_aead_import;
    wops.key_generate = w_key_generate;
    wops.key_import_private = w_import_private;
    wops.key_import_public = w_import_public;
    wops.key_destroy = w_destroy;
    wc.ops = &wops;
    wc.self = inner.self;
    for (size_t i = 0; i < N_VEC; i++) {
        const hvec_t *h = &vecs[i];
        dvec_t *d = &dv[i];
        cl_key_type_t type = h->kem == CL_HPKE_KEM_P256_SHA256 ? CL_KEY_P256 : CL_KEY_X25519;

        d->skr_len = unhex(h->skr, d->skr, sizeof d->skr);
        d->enc_len = unhex(h->enc, d->enc, sizeof d->enc);
        d->info_len = unhex(h->info, d->info, sizeof d->info);
        d->psk_len = unhex(h->psk, d->psk, sizeof d->psk);
        d->psk_id_len = unhex(h->psk_id, d->psk_id, sizeof d->psk_id);
        d->pks_len = unhex(h->pks, d->pks, sizeof d->pks);
        for (size_t j = 0; j < 3; j++) {
            d->aad_len[j] = unhex(h->aad[j], d->aad[j], sizeof d->aad[j]);
            d->ct_len[j] = unhex(h->ct[j], d->ct[j], sizeof d->ct[j]);
            if (d->ct_len[j] != 0)
                d->n_ct = j + 1;
        }
        d->pt_len = unhex(h->pt, d->pt, sizeof d->pt);
        CHECK(unhex(h->exp, d->exp, sizeof d->exp) == 32);
        CHECK(wc.ops->key_import_private(wc.self, type, CL_KEY_USAGE_ECDH, d->skr, d->skr_len,
                                         &keys[i]) == CL_OK);
    }
    base_live = n_live;
    /* Every vector opens and exports as printed in the RFC. */
    for (size_t i = 0; i < N_VEC; i++) {
        const dvec_t *d = &dv[i];
        cl_hpke_params_t p = params_of(i);
        cl_hpke_ctx_t ctx;
        uint8_t e[32], pt[64];
        size_t pl = 0;

        CHECK(cl_hpke_setup_r(&ctx, &wc, &p, keys[i], d->enc, d->enc_len) == CL_OK);
        CHECK(cl_hpke_export(&ctx, NULL, 0, e, sizeof e) == CL_OK && memcmp(e, d->exp, 32) == 0);
        for (size_t j = 0; j < d->n_ct; j++) {
            CHECK(cl_hpke_open(&ctx, d->aad[j], d->aad_len[j], d->ct[j], d->ct_len[j], pt,
                               sizeof pt, &pl) == CL_OK);
            CHECK(eq(pt, pl, d->pt, d->pt_len));
        }
        cl_hpke_ctx_free(&ctx);
    }
    CHECK(n_live == base_live);
    inited = 1;
}

/* ------------------------------------------------------------- input */

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd_t;

static void field(rd_t *r, const uint8_t **f, size_t *len)
{
    size_t l = 0;

    if (r->n >= 2) {
        l = (size_t)r->p[0] << 8 | r->p[1];
        r->p += 2;
        r->n -= 2;
    } else {
        r->p += r->n;
        r->n = 0;
    }
    if (l > r->n)
        l = r->n;
    *f = r->p;
    *len = l;
    r->p += l;
    r->n -= l;
}

static size_t g_opens; /* successful opens of the last input (for the seed writer) */

/* One open on ctx (or single-shot when ctx is NULL); checks the invariants. */
static cl_status_t open_one(size_t i, const cl_hpke_params_t *p, cl_hpke_ctx_t *ctx,
                            const dvec_t *m, size_t seq, const uint8_t *enc, size_t enc_len,
                            const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len)
{
    uint8_t *pt = malloc(ct_len + 1);
    size_t pl = 0;
    int real = m != NULL && seq < m->n_ct && eq(aad, aad_len, m->aad[seq], m->aad_len[seq]) &&
               eq(ct, ct_len, m->ct[seq], m->ct_len[seq]);
    cl_status_t rc;

    CHECK(pt != NULL);
    memset(pt, 0xa5, ct_len + 1);
    if (ctx == NULL)
        rc = cl_hpke_open_once(&wc, p, keys[i], enc, enc_len, aad, aad_len, ct, ct_len, pt,
                               ct_len + 1, &pl);
    else
        rc = cl_hpke_open(ctx, aad, aad_len, ct, ct_len, pt, ct_len + 1, &pl);
    CHECK(status_ok(rc));
    /* A real message opens, and nothing else does. */
    CHECK((rc == CL_OK) == real);
    if (rc == CL_OK)
        CHECK(eq(pt, pl, m->pt, m->pt_len));
    else if (rc == CL_ERR_AUTH && ct_len > CL_HPKE_TAG_LEN)
        CHECK(all_zero(pt, ct_len - CL_HPKE_TAG_LEN));
    free(pt);
    return rc;
}

static cl_status_t run(const uint8_t *data, size_t size)
{
    const uint8_t *enc, *info, *psk, *psk_id, *pks, *ectx, *aad, *ct;
    size_t enc_len, info_len, psk_len, psk_id_len, pks_len, ectx_len, aad_len, ct_len;
    cl_hpke_params_t p;
    cl_hpke_ctx_t ctx;
    const dvec_t *m;
    size_t i;
    rd_t r;
    cl_status_t rc;

    init();
    g_opens = 0;
    if (size < 8)
        return CL_ERR_BAD_INPUT;
    i = (size_t)(data[0] & 0x1f) % N_VEC;
    memset(&p, 0, sizeof p);
    p.suite.kem_id = (uint16_t)(data[1] << 8 | data[2]);
    p.suite.kdf_id = (uint16_t)(data[3] << 8 | data[4]);
    p.suite.aead_id = (uint16_t)(data[5] << 8 | data[6]);
    p.mode = data[7];
    r.p = data + 8;
    r.n = size - 8;
    field(&r, &enc, &enc_len);
    field(&r, &info, &info_len);
    field(&r, &psk, &psk_len);
    field(&r, &psk_id, &psk_id_len);
    field(&r, &pks, &pks_len);
    field(&r, &ectx, &ectx_len);
    p.info = info;
    p.info_len = info_len;
    p.psk = psk;
    p.psk_len = psk_len;
    p.psk_id = psk_id;
    p.psk_id_len = psk_id_len;
    p.sender_pub = pks;
    p.sender_pub_len = pks_len;
    m = setup_match(i, &p, enc, enc_len);

    if ((data[0] & 0x80) == 0) {
        field(&r, &aad, &aad_len);
        field(&r, &ct, &ct_len);
        rc = open_one(i, &p, NULL, m, 0, enc, enc_len, aad, aad_len, ct, ct_len);
        g_opens = rc == CL_OK;
    } else {
        memset(&ctx, 0xa5, sizeof ctx);
        rc = cl_hpke_setup_r(&ctx, &wc, &p, keys[i], enc, enc_len);
        CHECK(status_ok(rc) && rc != CL_ERR_AUTH);
        CHECK(m == NULL || rc == CL_OK);
        if (rc != CL_OK) {
            CHECK(all_zero(&ctx, sizeof ctx));
        } else {
            uint8_t e[32];
            cl_status_t xr = cl_hpke_export(&ctx, ectx, ectx_len, e, sizeof e);
            CHECK(xr == (ectx_len > CL_HPKE_MAX_INPUT ? CL_ERR_LIMIT : CL_OK));
            if (m != NULL && ectx_len == 0)
                CHECK(memcmp(e, m->exp, sizeof e) == 0);
            for (size_t k = 0; k < MAX_MSGS && r.n > 0; k++) {
                field(&r, &aad, &aad_len);
                field(&r, &ct, &ct_len);
                if (p.suite.aead_id == CL_HPKE_AEAD_EXPORT_ONLY) {
                    CHECK(cl_hpke_open(&ctx, aad, aad_len, ct, ct_len, e, 0, NULL) ==
                          CL_ERR_UNSUPPORTED);
                    continue;
                }
                if (open_one(i, &p, &ctx, m, g_opens, enc, enc_len, aad, aad_len, ct, ct_len) ==
                    CL_OK)
                    g_opens++;
            }
            cl_hpke_ctx_free(&ctx);
            CHECK(all_zero(&ctx, sizeof ctx));
        }
    }
    CHECK(n_live == base_live);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)run(data, size);
    return 0;
}

#ifdef FUZZ_HPKE_WRITE_CORPUS
/* ------------------------------------------------------- seed writer */
#include <stdio.h>

typedef struct seed {
    uint8_t head[8];
    const uint8_t *f[6]; /* enc, info, psk, psk_id, pkS, exporter_context */
    size_t fl[6];
    size_t n_msg;
    const uint8_t *aad[MAX_MSGS], *ct[MAX_MSGS];
    size_t aad_len[MAX_MSGS], ct_len[MAX_MSGS];
} seed_t;

static seed_t seed_of(size_t i, int ctxmode)
{
    const dvec_t *d = &dv[i];
    static const uint8_t garbage[17] = "not a ciphertext";
    seed_t s;

    memset(&s, 0, sizeof s);
    s.head[0] = (uint8_t)(i | (ctxmode ? 0x80 : 0));
    s.head[1] = (uint8_t)(vecs[i].kem >> 8);
    s.head[2] = (uint8_t)vecs[i].kem;
    s.head[4] = CL_HPKE_KDF_HKDF_SHA256;
    s.head[5] = (uint8_t)(vecs[i].aead >> 8);
    s.head[6] = (uint8_t)vecs[i].aead;
    s.head[7] = vecs[i].mode;
    s.f[0] = d->enc;
    s.fl[0] = d->enc_len;
    s.f[1] = d->info;
    s.fl[1] = d->info_len;
    s.f[2] = d->psk;
    s.fl[2] = d->psk_len;
    s.f[3] = d->psk_id;
    s.fl[3] = d->psk_id_len;
    s.f[4] = d->pks;
    s.fl[4] = d->pks_len;
    s.n_msg = d->n_ct == 0 ? 1 : ctxmode ? d->n_ct : 1;
    for (size_t j = 0; j < s.n_msg; j++) {
        s.aad[j] = d->aad[j];
        s.aad_len[j] = d->aad_len[j];
        s.ct[j] = d->n_ct != 0 ? d->ct[j] : garbage;
        s.ct_len[j] = d->n_ct != 0 ? d->ct_len[j] : sizeof garbage;
    }
    return s;
}

static size_t put(uint8_t *out, size_t n, const uint8_t *p, size_t len)
{
    out[n] = (uint8_t)(len >> 8);
    out[n + 1] = (uint8_t)len;
    if (len != 0)
        memcpy(out + n + 2, p, len);
    return n + 2 + len;
}

static const char *g_dir;
static int g_count;

/* Writes the seed after checking it gives `want` and `opens` successful opens. */
static void emit(const char *name, const seed_t *s, cl_status_t want, size_t opens)
{
    static uint8_t buf[4096];
    char path[512];
    size_t n = 8;
    cl_status_t rc;
    FILE *f;

    memcpy(buf, s->head, 8);
    for (size_t j = 0; j < 6; j++)
        n = put(buf, n, s->f[j], s->fl[j]);
    for (size_t j = 0; j < s->n_msg; j++) {
        n = put(buf, n, s->aad[j], s->aad_len[j]);
        n = put(buf, n, s->ct[j], s->ct_len[j]);
    }
    rc = run(buf, n);
    if (rc != want || g_opens != opens) {
        fprintf(stderr, "seed %s: status %d (want %d), %zu opens (want %zu)\n", name, (int)rc,
                (int)want, g_opens, opens);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    g_count++;
}

int main(int argc, char **argv)
{
    static uint8_t big[CL_HPKE_MAX_INPUT + 1];
    char name[64];
    uint8_t flip[64], enc[65];
    seed_t s;

    if (argc != 2) {
        fprintf(stderr, "usage: %s fuzz/corpus/fuzz_hpke\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    init();
    for (size_t i = 0; i < N_VEC; i++) {
        int has_ct = dv[i].n_ct != 0;
        snprintf(name, sizeof name, "vec-%s", vecs[i].name);
        s = seed_of(i, 0);
        emit(name, &s, has_ct ? CL_OK : CL_ERR_UNSUPPORTED, has_ct ? 1 : 0);
        snprintf(name, sizeof name, "ctx-%s", vecs[i].name);
        s = seed_of(i, 1);
        emit(name, &s, CL_OK, dv[i].n_ct);
    }
    /* Refused variants (vector indexes: 0 A.1.1, 1 A.1.2, 2 A.1.3, 8 A.3.1, 10 A.3.3). */
    s = seed_of(0, 0);
    memcpy(flip, dv[0].ct[0], dv[0].ct_len[0]);
    flip[3] ^= 0x10;
    s.ct[0] = flip;
    emit("bad-ct-bit", &s, CL_ERR_AUTH, 0);
    s = seed_of(0, 1);
    s.ct[1] = dv[0].ct[2]; /* message 2 where 1 is due */
    s.aad[1] = dv[0].aad[2];
    emit("bad-ctx-order", &s, CL_OK, 1);
    s = seed_of(8, 0);
    memcpy(enc, dv[8].enc, 65);
    enc[64] ^= 1;
    s.f[0] = enc;
    emit("bad-p256-offcurve", &s, CL_ERR_BAD_INPUT, 0);
    s = seed_of(8, 0);
    enc[0] = 0x02;
    memcpy(enc + 1, dv[8].enc + 1, 32);
    s.f[0] = enc;
    s.fl[0] = 33;
    emit("bad-p256-compressed", &s, CL_ERR_BAD_INPUT, 0);
    s = seed_of(0, 1);
    memset(enc, 0, 32);
    s.f[0] = enc;
    emit("bad-x25519-zero", &s, CL_ERR_BAD_INPUT, 0);
    s = seed_of(2, 0);
    s.f[4] = dv[10].pks; /* a P-256 pkS for an X25519 suite */
    s.fl[4] = dv[10].pks_len;
    emit("bad-pks-length", &s, CL_ERR_BAD_INPUT, 0);
    s = seed_of(10, 0);
    s.f[4] = dv[8].enc; /* another valid P-256 point as pkS */
    emit("bad-pks-wrong", &s, CL_ERR_AUTH, 0);
    s = seed_of(1, 0);
    s.f[2] = dv[1].pks; /* (empty) */
    s.fl[2] = 0;
    emit("bad-psk-missing", &s, CL_ERR_INVALID_ARG, 0);
    s = seed_of(1, 0);
    memcpy(flip, dv[1].psk, dv[1].psk_len);
    flip[0] ^= 1;
    s.f[2] = flip;
    emit("bad-psk-wrong", &s, CL_ERR_AUTH, 0);
    s = seed_of(0, 0);
    s.head[2] = 0x21;
    emit("bad-kem-x448", &s, CL_ERR_UNSUPPORTED, 0);
    s = seed_of(0, 0);
    s.head[4] = 3;
    emit("bad-kdf-sha512", &s, CL_ERR_UNSUPPORTED, 0);
    s = seed_of(0, 0);
    s.head[6] = 2;
    emit("bad-aead-aes256", &s, CL_ERR_UNSUPPORTED, 0);
    s = seed_of(0, 0);
    s.head[7] = 4;
    emit("bad-mode", &s, CL_ERR_UNSUPPORTED, 0);
    s = seed_of(0, 1);
    s.f[1] = big;
    s.fl[1] = sizeof big;
    emit("bad-info-limit", &s, CL_ERR_LIMIT, 0);
    s = seed_of(0, 0);
    s.head[0] = 8; /* A.3.1's P-256 key for an X25519 suite */
    emit("bad-key-type", &s, CL_ERR_INVALID_ARG, 0);
    /* Input shapes: too short, cut inside a field, four messages, an over-long exporter_context. */
    s = seed_of(0, 0);
    s.n_msg = 0;
    s.fl[0] = 10;
    for (size_t j = 1; j < 6; j++)
        s.fl[j] = 0;
    emit("shape-short-enc", &s, CL_ERR_BAD_INPUT, 0);
    s = seed_of(0, 1);
    s.n_msg = 4;
    s.aad[3] = dv[0].aad[2];
    s.aad_len[3] = dv[0].aad_len[2];
    s.ct[3] = dv[0].ct[2];
    s.ct_len[3] = dv[0].ct_len[2];
    emit("shape-ctx-4msgs", &s, CL_OK, 3);
    s = seed_of(8, 1);
    s.f[5] = big;
    s.fl[5] = sizeof big;
    emit("shape-export-limit", &s, CL_OK, 3);
    {
        static const uint8_t tiny[5] = {0x80, 0x00, 0x20, 0x00, 0x01};
        char path[512];
        FILE *f;
        CHECK(run(tiny, sizeof tiny) == CL_ERR_BAD_INPUT);
        snprintf(path, sizeof path, "%s/shape-tiny", g_dir);
        f = fopen(path, "wb");
        CHECK(f != NULL && fwrite(tiny, 1, sizeof tiny, f) == sizeof tiny && fclose(f) == 0);
        g_count++;
    }
    fprintf(stderr, "wrote %d seeds to %s\n", g_count, g_dir);
    return 0;
}
#endif
