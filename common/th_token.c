/*
 * HS256 and ES256 JWTs (JWS compact serialisation) over cjose, with the key
 * selection, algorithm pinning and claim checks that cjose leaves to its
 * caller.  Keys are made into cjose JWKs once, when they are loaded: a
 * signature is then one HMAC or one ECDSA operation, with no key parsing.
 * ES256 keys are read and checked with OpenSSL.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include <cjose/cjose.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "th_names.h"
#include "th_token.h"


#define TH_KEY_FILE_MAX 4096
#define TH_P256_BYTES   32


int
th_keyset_add(th_keyset_t *ks, const char *kid, const unsigned char *secret,
    size_t len, const char **err)
{
    size_t    i;
    th_key_t *key;

    if (kid == NULL || kid[0] == '\0' || strlen(kid) >= TH_KID_MAX) {
        *err = "key id must be 1 to 63 characters";
        return -1;
    }

    if (ks->nkeys > 0 && ks->alg != TH_ALG_HS256) {
        *err = "a secret cannot join a set of ES256 keys";
        return -1;
    }

    if (len < TH_KEY_MIN_LEN) {
        *err = "key must be at least 32 bytes";
        return -1;
    }

    if (ks->nkeys == TH_KEYSET_MAX) {
        *err = "too many keys";
        return -1;
    }

    for (i = 0; i < ks->nkeys; i++) {
        if (strcmp(ks->keys[i].kid, kid) == 0) {
            *err = "duplicate key id";
            return -1;
        }
    }

    key = &ks->keys[ks->nkeys];
    key->secret = malloc(len);
    if (key->secret == NULL) {
        *err = "out of memory";
        return -1;
    }

    key->jwk = cjose_jwk_create_oct_spec(secret, len, NULL);
    if (key->jwk == NULL) {
        free(key->secret);
        key->secret = NULL;
        *err = "out of memory";
        return -1;
    }

    memcpy(key->secret, secret, len);
    key->len = len;
    key->can_sign = 1;
    strcpy(key->kid, kid);
    ks->alg = TH_ALG_HS256;
    ks->nkeys++;

    return 0;
}


/* A key file of at most TH_KEY_FILE_MAX bytes into buf: 0, or -1. */
static int
th_key_file_read(const char *path, unsigned char buf[TH_KEY_FILE_MAX],
    size_t *n, const char **err)
{
    int   rc;
    FILE *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        *err = "cannot open key file";
        return -1;
    }

    *n = fread(buf, 1, TH_KEY_FILE_MAX, f);
    rc = ferror(f) || !feof(f);
    fclose(f);

    if (rc) {
        OPENSSL_cleanse(buf, TH_KEY_FILE_MAX);
        *err = "cannot read key file, or it is larger than 4096 bytes";
        return -1;
    }

    return 0;
}


static int
th_key_is_p256(EVP_PKEY *pkey)
{
    char   group[64];
    size_t len;

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
        return 0;
    }

    if (!EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof(group),
            &len))
    {
        return 0;
    }

    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}


/*
 * The JWK of a P-256 key: the public point (x, y) and, for a private key,
 * the scalar d.
 */
static cjose_jwk_t *
th_key_p256_jwk(EVP_PKEY *pkey, int private)
{
    BIGNUM              *d;
    size_t               len;
    cjose_jwk_t         *jwk;
    unsigned char        point[1 + 2 * TH_P256_BYTES];
    unsigned char        scalar[TH_P256_BYTES];
    cjose_jwk_ec_keyspec spec;

    /* the uncompressed point: 0x04, x, y */
    if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point,
            sizeof(point), &len)
        || len != sizeof(point) || point[0] != 0x04)
    {
        return NULL;
    }

    memset(&spec, 0, sizeof(spec));
    spec.crv = CJOSE_JWK_EC_P_256;
    spec.x = point + 1;
    spec.xlen = TH_P256_BYTES;
    spec.y = point + 1 + TH_P256_BYTES;
    spec.ylen = TH_P256_BYTES;

    d = NULL;

    if (private) {
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d)
            || BN_bn2binpad(d, scalar, sizeof(scalar)) != sizeof(scalar))
        {
            BN_clear_free(d);
            return NULL;
        }

        spec.d = scalar;
        spec.dlen = sizeof(scalar);
    }

    jwk = cjose_jwk_create_EC_spec(&spec, NULL);

    BN_clear_free(d);
    OPENSSL_cleanse(scalar, sizeof(scalar));

    return jwk;
}


int
th_keyset_add_pem_file(th_keyset_t *ks, const char *kid, const char *path,
    const char **err)
{
    int           private;
    BIO          *in;
    size_t        i, n;
    th_key_t     *key;
    EVP_PKEY     *pkey;
    cjose_jwk_t  *jwk;
    unsigned char buf[TH_KEY_FILE_MAX];

    if (kid == NULL || kid[0] == '\0' || strlen(kid) >= TH_KID_MAX) {
        *err = "key id must be 1 to 63 characters";
        return -1;
    }

    if (ks->nkeys > 0 && ks->alg != TH_ALG_ES256) {
        *err = "an ES256 key cannot join a set of secrets";
        return -1;
    }

    if (ks->nkeys == TH_KEYSET_MAX) {
        *err = "too many keys";
        return -1;
    }

    for (i = 0; i < ks->nkeys; i++) {
        if (strcmp(ks->keys[i].kid, kid) == 0) {
            *err = "duplicate key id";
            return -1;
        }
    }

    if (th_key_file_read(path, buf, &n, err) != 0) {
        return -1;
    }

    in = BIO_new_mem_buf(buf, (int) n);
    if (in == NULL) {
        OPENSSL_cleanse(buf, sizeof(buf));
        *err = "out of memory";
        return -1;
    }

    pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    private = (pkey != NULL);

    if (pkey == NULL) {
        (void) BIO_reset(in);
        pkey = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
    }

    BIO_free(in);
    ERR_clear_error();
    OPENSSL_cleanse(buf, sizeof(buf));

    if (pkey == NULL) {
        *err = "not a PEM private or public key";
        return -1;
    }

    if (!th_key_is_p256(pkey)) {
        EVP_PKEY_free(pkey);
        *err = "not an EC P-256 key (ES256)";
        return -1;
    }

    jwk = th_key_p256_jwk(pkey, private);
    EVP_PKEY_free(pkey);

    if (jwk == NULL) {
        *err = "cannot encode the key";
        return -1;
    }

    key = &ks->keys[ks->nkeys];
    key->secret = NULL;
    key->len = 0;
    key->jwk = jwk;
    key->can_sign = private;
    strcpy(key->kid, kid);
    ks->alg = TH_ALG_ES256;
    ks->nkeys++;

    return 0;
}


int
th_keyset_can_sign(const th_keyset_t *ks)
{
    return ks->nkeys > 0 && ks->keys[0].can_sign;
}


int
th_keyset_add_file(th_keyset_t *ks, const char *kid, const char *path,
    const char **err)
{
    int           rc;
    size_t        n;
    unsigned char buf[TH_KEY_FILE_MAX];

    if (th_key_file_read(path, buf, &n, err) != 0) {
        return -1;
    }

    while (n > 0 && isspace(buf[n - 1])) {
        n--;
    }

    rc = th_keyset_add(ks, kid, buf, n, err);
    OPENSSL_cleanse(buf, sizeof(buf));

    return rc;
}


void
th_keyset_clear(th_keyset_t *ks)
{
    size_t i;

    for (i = 0; i < ks->nkeys; i++) {
        if (ks->keys[i].secret != NULL) {
            OPENSSL_cleanse(ks->keys[i].secret, ks->keys[i].len);
            free(ks->keys[i].secret);
            ks->keys[i].secret = NULL;
        }

        cjose_jwk_release(ks->keys[i].jwk);
        ks->keys[i].jwk = NULL;
    }

    ks->nkeys = 0;
}


static const th_key_t *
th_keyset_find(const th_keyset_t *ks, const char *kid)
{
    size_t i;

    if (kid == NULL) {
        return NULL;
    }

    for (i = 0; i < ks->nkeys; i++) {
        if (strcmp(ks->keys[i].kid, kid) == 0) {
            return &ks->keys[i];
        }
    }

    return NULL;
}


char *
th_token_sign(const th_keyset_t *ks, json_t *claims)
{
    char           *payload, *token;
    const char     *compact;
    cjose_jws_t    *jws;
    const th_key_t *key;
    cjose_header_t *header;

    if (!th_keyset_can_sign(ks) || !json_is_object(claims)) {
        return NULL;
    }

    key = &ks->keys[0];
    token = NULL;
    jws = NULL;

    payload = json_dumps(claims, JSON_COMPACT);
    if (payload == NULL) {
        return NULL;
    }

    header = cjose_header_new(NULL);

    if (header != NULL
        && cjose_header_set(header, CJOSE_HDR_ALG,
            ks->alg == TH_ALG_ES256 ? CJOSE_HDR_ALG_ES256 : CJOSE_HDR_ALG_HS256,
            NULL)
        && cjose_header_set(header, "typ", "JWT", NULL)
        && cjose_header_set(header, CJOSE_HDR_KID, key->kid, NULL))
    {
        jws = cjose_jws_sign(key->jwk, header, (const uint8_t *) payload,
            strlen(payload), NULL);
    }

    if (jws != NULL && cjose_jws_export(jws, &compact, NULL)) {
        token = strdup(compact);
    }

    cjose_jws_release(jws);
    cjose_header_release(header);
    free(payload);

    return token;
}


static int
th_claims_has_audience(json_t *claims, const char *audience)
{
    size_t  i;
    json_t *aud, *item;

    aud = json_object_get(claims, "aud");

    if (json_is_string(aud)) {
        return strcmp(json_string_value(aud), audience) == 0;
    }

    if (json_is_array(aud)) {
        json_array_foreach (aud, i, item) {
            if (json_is_string(item)
                && strcmp(json_string_value(item), audience) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


static th_token_status_t
th_claims_check(json_t *claims, const char *audience, time_t now, long leeway)
{
    json_t *exp, *nbf, *iss;

    exp = json_object_get(claims, "exp");
    if (!json_is_integer(exp)) {
        return TH_TOKEN_MALFORMED;
    }

    if ((json_int_t) now - leeway >= json_integer_value(exp)) {
        return TH_TOKEN_EXPIRED;
    }

    nbf = json_object_get(claims, "nbf");
    if (nbf != NULL) {
        if (!json_is_integer(nbf)) {
            return TH_TOKEN_MALFORMED;
        }

        if ((json_int_t) now + leeway < json_integer_value(nbf)) {
            return TH_TOKEN_NOT_YET_VALID;
        }
    }

    iss = json_object_get(claims, "iss");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), TH_ISSUER)) {
        return TH_TOKEN_WRONG_ISSUER;
    }

    if (!th_claims_has_audience(claims, audience)) {
        return TH_TOKEN_WRONG_AUDIENCE;
    }

    return TH_TOKEN_OK;
}


int
th_jws_canonical(const char *token, size_t len)
{
    size_t            n;
    const char       *sig, *last, *end;
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    end = token + len;

    /* cjose 0.6.2.1 asserts (aborts) on a '=' that cuts a group short */
    if (memchr(token, '=', len) != NULL) {
        return 0;
    }

    sig = token;
    for (last = token; last < end; last++) {
        if (*last == '.') {
            sig = last + 1;
        }
    }

    n = (size_t) (end - sig);
    if (n == 0 || n % 4 == 1) {
        return n == 0;
    }

    if (n % 4 == 0) {
        return 1;
    }

    last = memchr(alphabet, end[-1], sizeof(alphabet) - 1);
    if (last == NULL) {
        return 0;
    }

    /* the bits after the last whole byte: 4 of 2 characters, 2 of 3 */
    return ((last - alphabet) & (n % 4 == 2 ? 0x0f : 0x03)) == 0;
}


/*
 * The "alg" of a token cjose would not import: "none" or an algorithm it
 * does not know is a refused algorithm, anything else is malformed.
 */
static th_token_status_t
th_token_refused_header(const char *token)
{
    size_t            len;
    json_t           *header, *alg;
    uint8_t          *raw;
    const char       *dot;
    th_token_status_t status;

    dot = strchr(token, '.');
    if (dot == NULL
        || !cjose_base64url_decode(token, (size_t) (dot - token), &raw, &len,
            NULL))
    {
        return TH_TOKEN_MALFORMED;
    }

    header = json_loadb((const char *) raw, len, JSON_REJECT_DUPLICATES, NULL);
    cjose_get_dealloc()(raw);

    alg = json_object_get(header, "alg");
    status = json_is_string(alg) ? TH_TOKEN_BAD_ALG : TH_TOKEN_MALFORMED;
    json_decref(header);

    return status;
}


th_token_status_t
th_token_verify(const th_keyset_t *ks, const char *token, const char *audience,
    time_t now, long leeway, json_t **claims)
{
    size_t            len;
    json_t           *parsed;
    uint8_t          *payload;
    const char       *alg, *want;
    cjose_jws_t      *jws;
    const th_key_t   *key;
    cjose_header_t   *header;
    th_token_status_t status;

    *claims = NULL;

    want =
        (ks->alg == TH_ALG_ES256) ? CJOSE_HDR_ALG_ES256 : CJOSE_HDR_ALG_HS256;

    if (token == NULL || strlen(token) > 8192
        || !th_jws_canonical(token, strlen(token)))
    {
        return TH_TOKEN_MALFORMED;
    }

    jws = cjose_jws_import(token, strlen(token), NULL);
    if (jws == NULL) {
        return th_token_refused_header(token);
    }

    /* the algorithm is the key set's, whatever the header says */
    header = cjose_jws_get_protected(jws);
    alg = cjose_header_get(header, CJOSE_HDR_ALG, NULL);
    if (alg == NULL || strcmp(alg, want) != 0) {
        cjose_jws_release(jws);
        return TH_TOKEN_BAD_ALG;
    }

    key = th_keyset_find(ks, cjose_header_get(header, CJOSE_HDR_KID, NULL));
    if (key == NULL) {
        cjose_jws_release(jws);
        return TH_TOKEN_UNKNOWN_KEY;
    }

    if (!cjose_jws_verify(jws, key->jwk, NULL)) {
        cjose_jws_release(jws);
        return TH_TOKEN_BAD_SIGNATURE;
    }

    parsed = NULL;
    if (cjose_jws_get_plaintext(jws, &payload, &len, NULL)) {
        parsed = json_loadb((const char *) payload, len, JSON_REJECT_DUPLICATES,
            NULL);
    }

    cjose_jws_release(jws);

    if (!json_is_object(parsed)) {
        json_decref(parsed);
        return TH_TOKEN_MALFORMED;
    }

    status = th_claims_check(parsed, audience, now, leeway);
    if (status != TH_TOKEN_OK) {
        json_decref(parsed);
        return status;
    }

    *claims = parsed;

    return TH_TOKEN_OK;
}


const char *
th_token_status_text(th_token_status_t status)
{
    switch (status) {
    case TH_TOKEN_OK:
        return "valid";
    case TH_TOKEN_MALFORMED:
        return "malformed token";
    case TH_TOKEN_UNKNOWN_KEY:
        return "token signed with an unknown key";
    case TH_TOKEN_BAD_ALG:
        return "token algorithm not accepted";
    case TH_TOKEN_BAD_SIGNATURE:
        return "bad token signature";
    case TH_TOKEN_EXPIRED:
        return "token expired";
    case TH_TOKEN_NOT_YET_VALID:
        return "token not yet valid";
    case TH_TOKEN_WRONG_AUDIENCE:
        return "token not meant for this service";
    case TH_TOKEN_WRONG_ISSUER:
        return "token from an unknown issuer";
    }

    return "invalid token";
}


int
th_random_b64url(char *buf, size_t size, size_t nbytes)
{
    int           n, i;
    unsigned char raw[64];

    if (nbytes > sizeof(raw) || size < 4 * ((nbytes + 2) / 3) + 1) {
        return -1;
    }

    if (RAND_bytes(raw, (int) nbytes) != 1) {
        return -1;
    }

    n = EVP_EncodeBlock((unsigned char *) buf, raw, (int) nbytes);
    OPENSSL_cleanse(raw, sizeof(raw));

    while (n > 0 && buf[n - 1] == '=') {
        n--;
    }

    for (i = 0; i < n; i++) {
        if (buf[i] == '+') {
            buf[i] = '-';

        } else if (buf[i] == '/') {
            buf[i] = '_';
        }
    }

    buf[n] = '\0';

    return 0;
}


int
th_token_new_id(char *buf, size_t size)
{
    char id[4 * ((16 + 2) / 3) + 1];

    /* the encoder needs room for padding the id does not keep */
    if (size < TH_TOKEN_ID_LEN + 1 || th_random_b64url(id, sizeof(id), 16)) {
        return -1;
    }

    memcpy(buf, id, TH_TOKEN_ID_LEN + 1);

    return 0;
}


void
th_sha256_hex(const void *data, size_t len, char buf[65])
{
    size_t            i;
    unsigned char     md[SHA256_DIGEST_LENGTH];
    static const char hex[] = "0123456789abcdef";

    SHA256(data, len, md);

    for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        buf[2 * i] = hex[md[i] >> 4];
        buf[2 * i + 1] = hex[md[i] & 0xf];
    }

    buf[64] = '\0';
}
