/*
 * Unit tests of the shared token and key-set code (common/th_token.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "th_names.h"
#include "th_token.h"

#define NOW 1800000000

static const char key1[] = "0123456789abcdef0123456789abcdef-key-one";
static const char key2[] = "0123456789abcdef0123456789abcdef-key-two";

/* test keys (openssl ecparam -name prime256v1 -genkey), never used elsewhere */
static const char ec_a_sec1[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIPuMpbzvbmIhT3kNpshPAbtDhqguL1WOEjcMzETEEP5voAoGCCqGSM49\n"
    "AwEHoUQDQgAE88ZEiePKlhN2Lfhbk1ixACNPgUV6DNyM6ErOnY06zqvmynDhh0YU\n"
    "W+VwY0LKUMdJrofyd512K9UN6D5ICPmjAQ==\n"
    "-----END EC PRIVATE KEY-----\n";

static const char ec_a_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE88ZEiePKlhN2Lfhbk1ixACNPgUV6\n"
    "DNyM6ErOnY06zqvmynDhh0YUW+VwY0LKUMdJrofyd512K9UN6D5ICPmjAQ==\n"
    "-----END PUBLIC KEY-----\n";

static const char ec_b_pkcs8[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXBttwufCzYv14KDP\n"
    "iDBdbDEj1vaFBeg0f6ELVeABsbehRANCAASPE0S51YGfz3mP2tOGTWtwe30EjULO\n"
    "K6jC+ydvXBJqrxoUOQNBMzDEyiK/UhbUDut9rbj9DnU0RPYHoQxgtuJg\n"
    "-----END PRIVATE KEY-----\n";

static const char ec_b_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEjxNEudWBn895j9rThk1rcHt9BI1C\n"
    "ziuowvsnb1wSaq8aFDkDQTMwxMoiv1IW1A7rfa24/Q51NET2B6EMYLbiYA==\n"
    "-----END PUBLIC KEY-----\n";

static const char ed25519_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEINBGk2l9X3bm8nWULbzZ759QexAE8bO43f/LRWXPEYTK\n"
    "-----END PRIVATE KEY-----\n";

static const char p384_key[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MIGkAgEBBDAzT6eVcs788RaYqlgpLdjiEijDpNi/bnvcMbk8UiefVhkWkSGRNtxq\n"
    "44AC19H+yHWgBwYFK4EEACKhZANiAAQqPR/0/I45OCH52IztljnqpdOcMeiuyn5s\n"
    "S3UbkkD02Xtk3CdYDeyuOxECa4re4mLaRzW2+dE33cMeVoBVhByAFKa4sDC6UReO\n"
    "VK7GpdDe7R7CMu8NckaGlXNvt0GduWc=\n"
    "-----END EC PRIVATE KEY-----\n";


static void
keyset_with(th_keyset_t *ks, const char *kid, const char *secret)
{
    const char *err;

    assert_int_equal(th_keyset_add(ks, kid, (const unsigned char *) secret,
                         strlen(secret), &err),
        0);
}


static json_t *
join_claims(const char *aud, long exp)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss", TH_ISSUER,
        "aud", aud, "sub", "staff:abc", "room", "room-1", "role", TH_ROLE_CHAIR,
        "iat", (json_int_t) NOW, "exp", (json_int_t) exp);
}


static char *
sign(th_keyset_t *ks, const char *aud, long exp)
{
    char   *token;
    json_t *claims;

    claims = join_claims(aud, exp);
    token = th_token_sign(ks, claims);
    json_decref(claims);
    assert_non_null(token);

    return token;
}


static void
test_signed_token_verifies_with_its_claims(void **state)
{
    char       *token;
    json_t     *claims;
    th_keyset_t ks = { 0 };

    keyset_with(&ks, "k1", key1);
    token = sign(&ks, TH_AUD_JOIN, NOW + 60);

    assert_int_equal(th_token_verify(&ks, token, TH_AUD_JOIN, NOW, 0, &claims),
        TH_TOKEN_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "room")),
        "room-1");
    assert_string_equal(json_string_value(json_object_get(claims, "sub")),
        "staff:abc");

    json_decref(claims);
    free(token);
    th_keyset_clear(&ks);
}


static void
test_any_key_of_the_set_verifies_first_one_signs(void **state)
{
    char       *token;
    json_t     *claims;
    th_keyset_t old = { 0 }, rotated = { 0 };

    keyset_with(&old, "k1", key1);
    token = sign(&old, TH_AUD_API, NOW + 60);

    /* After rotation k2 signs, and k1 tokens still verify. */
    keyset_with(&rotated, "k2", key2);
    keyset_with(&rotated, "k1", key1);

    assert_int_equal(th_token_verify(&rotated, token, TH_AUD_API, NOW, 0,
                         &claims),
        TH_TOKEN_OK);
    json_decref(claims);
    free(token);

    token = sign(&rotated, TH_AUD_API, NOW + 60);
    assert_non_null(strstr(token, "eyJ"));
    assert_int_equal(th_token_verify(&old, token, TH_AUD_API, NOW, 0, &claims),
        TH_TOKEN_UNKNOWN_KEY);
    assert_null(claims);

    free(token);
    th_keyset_clear(&old);
    th_keyset_clear(&rotated);
}


static void
test_tampered_payload_is_refused(void **state)
{
    char       *token, *dot;
    json_t     *claims;
    th_keyset_t ks = { 0 };

    keyset_with(&ks, "k1", key1);
    token = sign(&ks, TH_AUD_JOIN, NOW + 60);

    /* Flip one character of the payload. */
    dot = strchr(token, '.');
    dot[5] = (dot[5] == 'A') ? 'B' : 'A';

    assert_int_not_equal(th_token_verify(&ks, token, TH_AUD_JOIN, NOW, 0,
                             &claims),
        TH_TOKEN_OK);
    assert_null(claims);

    free(token);
    th_keyset_clear(&ks);
}


static void
test_same_kid_other_secret_is_bad_signature(void **state)
{
    char       *token;
    json_t     *claims;
    th_keyset_t signer = { 0 }, verifier = { 0 };

    keyset_with(&signer, "k1", key1);
    keyset_with(&verifier, "k1", key2);
    token = sign(&signer, TH_AUD_JOIN, NOW + 60);

    assert_int_equal(th_token_verify(&verifier, token, TH_AUD_JOIN, NOW, 0,
                         &claims),
        TH_TOKEN_BAD_SIGNATURE);

    free(token);
    th_keyset_clear(&signer);
    th_keyset_clear(&verifier);
}


static void
test_expired_token_is_refused_within_leeway_accepted(void **state)
{
    char       *token;
    json_t     *claims;
    th_keyset_t ks = { 0 };

    keyset_with(&ks, "k1", key1);
    token = sign(&ks, TH_AUD_JOIN, NOW - 5);

    assert_int_equal(th_token_verify(&ks, token, TH_AUD_JOIN, NOW, 0, &claims),
        TH_TOKEN_EXPIRED);
    assert_int_equal(th_token_verify(&ks, token, TH_AUD_JOIN, NOW, 10, &claims),
        TH_TOKEN_OK);
    json_decref(claims);

    free(token);
    th_keyset_clear(&ks);
}


static void
test_wrong_audience_is_refused(void **state)
{
    char       *token;
    json_t     *claims;
    th_keyset_t ks = { 0 };

    keyset_with(&ks, "k1", key1);
    token = sign(&ks, TH_AUD_API, NOW + 60);

    assert_int_equal(th_token_verify(&ks, token, TH_AUD_JOIN, NOW, 0, &claims),
        TH_TOKEN_WRONG_AUDIENCE);

    free(token);
    th_keyset_clear(&ks);
}


static void
test_alg_none_token_is_refused(void **state)
{
    json_t     *claims;
    th_keyset_t ks = { 0 };

    /* {"alg":"none","kid":"k1"} . {"iss":"telehealth","exp":9999999999} . */
    static const char token[] =
        "eyJhbGciOiJub25lIiwia2lkIjoiazEifQ."
        "eyJpc3MiOiJ0ZWxlaGVhbHRoIiwiZXhwIjo5OTk5OTk5OTk5fQ.";

    keyset_with(&ks, "k1", key1);

    assert_int_equal(th_token_verify(&ks, token, TH_AUD_JOIN, NOW, 0, &claims),
        TH_TOKEN_BAD_ALG);
    assert_null(claims);

    th_keyset_clear(&ks);
}


static void
test_garbage_is_malformed(void **state)
{
    json_t     *claims;
    th_keyset_t ks = { 0 };

    keyset_with(&ks, "k1", key1);

    assert_int_equal(th_token_verify(&ks, "not-a-token", TH_AUD_JOIN, NOW, 0,
                         &claims),
        TH_TOKEN_MALFORMED);
    assert_int_equal(th_token_verify(&ks, "", TH_AUD_JOIN, NOW, 0, &claims),
        TH_TOKEN_MALFORMED);
    assert_int_equal(th_token_verify(&ks, NULL, TH_AUD_JOIN, NOW, 0, &claims),
        TH_TOKEN_MALFORMED);

    th_keyset_clear(&ks);
}


static void
test_keyset_refuses_short_duplicate_and_empty_kid(void **state)
{
    const char *err;
    th_keyset_t ks = { 0 };

    assert_int_equal(th_keyset_add(&ks, "k1", (const unsigned char *) "short",
                         5, &err),
        -1);
    assert_non_null(strstr(err, "32"));

    keyset_with(&ks, "k1", key1);
    assert_int_equal(th_keyset_add(&ks, "k1", (const unsigned char *) key2,
                         strlen(key2), &err),
        -1);
    assert_int_equal(th_keyset_add(&ks, "", (const unsigned char *) key2,
                         strlen(key2), &err),
        -1);
    assert_int_equal(ks.nkeys, 1);

    th_keyset_clear(&ks);
    assert_int_equal(ks.nkeys, 0);
}


static void
test_key_file_trailing_newline_is_not_part_of_the_key(void **state)
{
    FILE       *f;
    char        path[] = "/tmp/th-key-XXXXXX";
    const char *err;
    th_keyset_t ks = { 0 };
    int         fd;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fprintf(f, "%s\n", key1);
    fclose(f);

    assert_int_equal(th_keyset_add_file(&ks, "k1", path, &err), 0);
    assert_int_equal(ks.keys[0].len, strlen(key1));
    assert_memory_equal(ks.keys[0].secret, key1, strlen(key1));

    unlink(path);
    assert_int_equal(th_keyset_add_file(&ks, "k2", path, &err), -1);

    th_keyset_clear(&ks);
}


static void
test_random_ids_are_url_safe_and_distinct(void **state)
{
    char   a[64], b[64];
    size_t i;

    assert_int_equal(th_token_new_id(a, sizeof(a)), 0);
    assert_int_equal(th_token_new_id(b, sizeof(b)), 0);
    assert_int_equal(strlen(a), TH_TOKEN_ID_LEN);
    assert_string_not_equal(a, b);

    assert_int_equal(th_random_b64url(a, sizeof(a), 32), 0);
    assert_int_equal(strlen(a), 43);
    for (i = 0; i < strlen(a); i++) {
        assert_null(strchr("+/=", a[i]));
    }

    assert_int_equal(th_random_b64url(a, 8, 32), -1);
}


static void
test_sha256_hex_matches_known_vector(void **state)
{
    char hex[65];

    th_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
}


/* ------------------------------------------------ ES256 join credentials */

/* writes text to a temporary file; the caller unlinks path */
static void
write_temp(char *path, const char *text)
{
    int   fd;
    FILE *f;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}


static int
add_pem(th_keyset_t *ks, const char *kid, const char *text, const char **err)
{
    int  rc;
    char path[] = "/tmp/th-pem-XXXXXX";

    write_temp(path, text);
    *err = NULL;
    rc = th_keyset_add_pem_file(ks, kid, path, err);
    unlink(path);

    return rc;
}


static void
test_es256_private_key_signs_public_key_verifies(void **state)
{
    char       *token;
    json_t     *claims;
    const char *err;
    th_keyset_t signer = { 0 }, verifier = { 0 };

    /* SEC1 ("EC PRIVATE KEY") and PKCS#8 private keys both load */
    assert_int_equal(add_pem(&signer, "j1", ec_a_sec1, &err), 0);
    assert_true(th_keyset_can_sign(&signer));
    assert_int_equal(signer.alg, TH_ALG_ES256);

    assert_int_equal(add_pem(&verifier, "j1", ec_a_pub, &err), 0);
    assert_false(th_keyset_can_sign(&verifier));

    token = sign(&signer, TH_AUD_JOIN, NOW + 60);
    assert_int_equal(th_token_verify(&verifier, token, TH_AUD_JOIN, NOW, 0,
                         &claims),
        TH_TOKEN_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "room")),
        "room-1");
    json_decref(claims);

    /* the signer verifies its own tokens too (its public half) */
    assert_int_equal(th_token_verify(&signer, token, TH_AUD_JOIN, NOW, 0,
                         &claims),
        TH_TOKEN_OK);
    json_decref(claims);

    free(token);
    th_keyset_clear(&signer);
    th_keyset_clear(&verifier);
}


static void
test_es256_public_key_set_cannot_sign(void **state)
{
    json_t     *claims;
    const char *err;
    th_keyset_t ks = { 0 };

    assert_int_equal(add_pem(&ks, "j1", ec_a_pub, &err), 0);

    claims = join_claims(TH_AUD_JOIN, NOW + 60);
    assert_null(th_token_sign(&ks, claims));
    json_decref(claims);

    th_keyset_clear(&ks);
}


static void
test_es256_rotation_first_signs_every_key_verifies(void **state)
{
    char       *old_token, *new_token;
    json_t     *claims;
    const char *err;
    th_keyset_t old_signer = { 0 }, new_signer = { 0 }, verifier = { 0 };

    assert_int_equal(add_pem(&old_signer, "j1", ec_a_sec1, &err), 0);
    assert_int_equal(add_pem(&new_signer, "j2", ec_b_pkcs8, &err), 0);
    assert_int_equal(add_pem(&new_signer, "j1", ec_a_sec1, &err), 0);
    assert_int_equal(add_pem(&verifier, "j2", ec_b_pub, &err), 0);
    assert_int_equal(add_pem(&verifier, "j1", ec_a_pub, &err), 0);

    old_token = sign(&old_signer, TH_AUD_JOIN, NOW + 60);
    new_token = sign(&new_signer, TH_AUD_JOIN, NOW + 60);

    assert_int_equal(th_token_verify(&verifier, old_token, TH_AUD_JOIN, NOW, 0,
                         &claims),
        TH_TOKEN_OK);
    json_decref(claims);
    assert_int_equal(th_token_verify(&verifier, new_token, TH_AUD_JOIN, NOW, 0,
                         &claims),
        TH_TOKEN_OK);
    json_decref(claims);

    /* the new set signs with j2, which the old verifier does not know */
    th_keyset_clear(&verifier);
    assert_int_equal(add_pem(&verifier, "j1", ec_a_pub, &err), 0);
    assert_int_equal(th_token_verify(&verifier, new_token, TH_AUD_JOIN, NOW, 0,
                         &claims),
        TH_TOKEN_UNKNOWN_KEY);

    free(old_token);
    free(new_token);
    th_keyset_clear(&old_signer);
    th_keyset_clear(&new_signer);
    th_keyset_clear(&verifier);
}


static void
test_es256_other_key_same_kid_is_bad_signature(void **state)
{
    char       *token;
    json_t     *claims;
    const char *err;
    th_keyset_t signer = { 0 }, verifier = { 0 };

    assert_int_equal(add_pem(&signer, "j1", ec_b_pkcs8, &err), 0);
    assert_int_equal(add_pem(&verifier, "j1", ec_a_pub, &err), 0);

    token = sign(&signer, TH_AUD_JOIN, NOW + 60);
    assert_int_equal(th_token_verify(&verifier, token, TH_AUD_JOIN, NOW, 0,
                         &claims),
        TH_TOKEN_BAD_SIGNATURE);
    assert_null(claims);

    free(token);
    th_keyset_clear(&signer);
    th_keyset_clear(&verifier);
}


/* the key sets of access tokens and join credentials never cross */
static void
test_hs256_and_es256_tokens_do_not_cross(void **state)
{
    char       *hs_token, *es_token;
    json_t     *claims;
    const char *err;
    th_keyset_t hs = { 0 }, es = { 0 };

    keyset_with(&hs, "j1", key1);
    assert_int_equal(add_pem(&es, "j1", ec_a_sec1, &err), 0);

    hs_token = sign(&hs, TH_AUD_JOIN, NOW + 60);
    es_token = sign(&es, TH_AUD_API, NOW + 60);

    /* same kid, but the algorithm is that of the set, not the header's */
    assert_int_equal(th_token_verify(&es, hs_token, TH_AUD_JOIN, NOW, 0,
                         &claims),
        TH_TOKEN_BAD_ALG);
    assert_int_equal(th_token_verify(&hs, es_token, TH_AUD_API, NOW, 0,
                         &claims),
        TH_TOKEN_BAD_ALG);

    free(hs_token);
    free(es_token);
    th_keyset_clear(&hs);
    th_keyset_clear(&es);
}


static void
test_pem_key_set_refuses_secrets_other_curves_and_mixing(void **state)
{
    const char *err;
    th_keyset_t ks = { 0 }, hs = { 0 };

    /* an HS256 secret is no PEM key: Janus cannot be given one */
    assert_int_equal(add_pem(&ks, "k1", key1, &err), -1);
    assert_non_null(err);
    assert_int_equal(add_pem(&ks, "e1", ed25519_key, &err), -1);
    assert_int_equal(add_pem(&ks, "p1", p384_key, &err), -1);
    assert_int_equal(ks.nkeys, 0);

    assert_int_equal(add_pem(&ks, "j1", ec_a_pub, &err), 0);
    assert_int_equal(add_pem(&ks, "j1", ec_b_pub, &err), -1);
    assert_int_equal(th_keyset_add(&ks, "k1", (const unsigned char *) key1,
                         strlen(key1), &err),
        -1);

    keyset_with(&hs, "k1", key1);
    assert_int_equal(add_pem(&hs, "j1", ec_a_pub, &err), -1);

    th_keyset_clear(&ks);
    th_keyset_clear(&hs);
}


/*
 * One signature has one text: a padded token, or one whose signature ends
 * in a character with stray low bits (the same bytes once decoded), is
 * malformed; neither may reach the base64 decoder that aborts on padding.
 */
static void
test_padded_or_noncanonical_signature_is_malformed(void **state)
{
    char       *token, *tail;
    size_t      len;
    json_t     *claims;
    th_keyset_t ks = { 0 };

    keyset_with(&ks, "k1", key1);
    token = sign(&ks, TH_AUD_JOIN, NOW + 60);
    len = strlen(token);

    /* HS256: 32 bytes, 43 characters; the last carries 4 stray bits */
    tail = &token[len - 1];
    assert_int_equal(len - (strrchr(token, '.') - token) - 1, 43);
    assert_true(th_jws_canonical(token, len));

    *tail = (char) (*tail == 'A' ? 'B' : *tail ^ 1);
    assert_false(th_jws_canonical(token, len));
    assert_int_equal(th_token_verify(&ks, token, TH_AUD_JOIN, NOW, 0, &claims),
        TH_TOKEN_MALFORMED);
    assert_null(claims);
    free(token);

    /* a '=' that ends a group early, anywhere in the token */
    assert_int_equal(th_token_verify(&ks,
                         "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJ=.AAAAA",
                         TH_AUD_JOIN, NOW, 0, &claims),
        TH_TOKEN_MALFORMED);
    assert_int_equal(th_token_verify(&ks, "eyJhbG=ciOi.e30.AAAA", TH_AUD_JOIN,
                         NOW, 0, &claims),
        TH_TOKEN_MALFORMED);

    th_keyset_clear(&ks);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_token_verifies_with_its_claims),
        cmocka_unit_test(test_any_key_of_the_set_verifies_first_one_signs),
        cmocka_unit_test(test_tampered_payload_is_refused),
        cmocka_unit_test(test_same_kid_other_secret_is_bad_signature),
        cmocka_unit_test(test_expired_token_is_refused_within_leeway_accepted),
        cmocka_unit_test(test_wrong_audience_is_refused),
        cmocka_unit_test(test_alg_none_token_is_refused),
        cmocka_unit_test(test_garbage_is_malformed),
        cmocka_unit_test(test_padded_or_noncanonical_signature_is_malformed),
        cmocka_unit_test(test_keyset_refuses_short_duplicate_and_empty_kid),
        cmocka_unit_test(test_key_file_trailing_newline_is_not_part_of_the_key),
        cmocka_unit_test(test_random_ids_are_url_safe_and_distinct),
        cmocka_unit_test(test_sha256_hex_matches_known_vector),
        cmocka_unit_test(test_es256_private_key_signs_public_key_verifies),
        cmocka_unit_test(test_es256_public_key_set_cannot_sign),
        cmocka_unit_test(test_es256_rotation_first_signs_every_key_verifies),
        cmocka_unit_test(test_es256_other_key_same_kid_is_bad_signature),
        cmocka_unit_test(test_hs256_and_es256_tokens_do_not_cross),
        cmocka_unit_test(
            test_pem_key_set_refuses_secrets_other_curves_and_mixing),
    };

    return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}
