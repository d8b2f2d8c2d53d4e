/*
 * HS256 and ES256 JWTs over libjwt, with the key selection, algorithm
 * pinning and claim checks that libjwt leaves to its caller.  ES256 keys
 * are read and checked with OpenSSL; libjwt signs and verifies with their
 * PEM text.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "th_names.h"
#include "th_token.h"


#define TH_KEY_FILE_MAX 4096


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

    memcpy(key->secret, secret, len);
    key->len = len;
    key->pub = NULL;
    key->publen = 0;
    strcpy(key->kid, kid);
    ks->alg = TH_ALG_HS256;
    ks->nkeys++;

    return 0;
}


static unsigned char *
th_bio_copy(BIO *bio, size_t *len)
{
    char          *data;
    long           n;
    unsigned char *copy;

    n = BIO_get_mem_data(bio, &data);
    if (n <= 0) {
        return NULL;
    }

    copy = malloc((size_t) n + 1);
    if (copy == NULL) {
        return NULL;
    }

    memcpy(copy, data, (size_t) n);
    copy[n] = '\0';
    *len = (size_t) n;

    return copy;
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


int
th_keyset_add_pem_file(th_keyset_t *ks, const char *kid, const char *path,
    const char **err)
{
    int            rc, private;
    BIO           *in, *out;
    FILE          *f;
    size_t         i, n;
    th_key_t      *key;
    EVP_PKEY      *pkey;
    unsigned char *priv, *pub;
    size_t         privlen, publen;
    unsigned char  buf[TH_KEY_FILE_MAX];

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

    f = fopen(path, "rb");
    if (f == NULL) {
        *err = "cannot open key file";
        return -1;
    }

    n = fread(buf, 1, sizeof(buf), f);
    rc = ferror(f) || !feof(f);
    fclose(f);

    if (rc) {
        OPENSSL_cleanse(buf, sizeof(buf));
        *err = "cannot read key file, or it is larger than 4096 bytes";
        return -1;
    }

    in = BIO_new_mem_buf(buf, (int) n);
    if (in == NULL) {
        OPENSSL_cleanse(buf, sizeof(buf));
        *err = "out of memory";
        return -1;
    }

    priv = NULL;
    privlen = 0;

    pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    private = (pkey != NULL);

    if (pkey == NULL) {
        (void) BIO_reset(in);
        pkey = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
    }

    BIO_free(in);
    ERR_clear_error();

    if (pkey == NULL) {
        OPENSSL_cleanse(buf, sizeof(buf));
        *err = "not a PEM private or public key";
        return -1;
    }

    if (!th_key_is_p256(pkey)) {
        EVP_PKEY_free(pkey);
        OPENSSL_cleanse(buf, sizeof(buf));
        *err = "not an EC P-256 key (ES256)";
        return -1;
    }

    out = BIO_new(BIO_s_mem());
    pub = NULL;

    if (out != NULL && PEM_write_bio_PUBKEY(out, pkey)) {
        pub = th_bio_copy(out, &publen);
    }

    BIO_free(out);

    /* a private key is kept as PKCS#8 PEM, the form libjwt reads */
    if (pub != NULL && private) {
        out = BIO_new(BIO_s_secmem());
        if (out == NULL
            || !PEM_write_bio_PrivateKey(out, pkey, NULL, NULL, 0, NULL, NULL)
            || (priv = th_bio_copy(out, &privlen)) == NULL)
        {
            free(pub);
            pub = NULL;
        }

        BIO_free(out);
    }

    EVP_PKEY_free(pkey);
    OPENSSL_cleanse(buf, sizeof(buf));

    if (pub == NULL) {
        *err = "cannot encode the key";
        return -1;
    }

    key = &ks->keys[ks->nkeys];
    key->secret = priv;
    key->len = privlen;
    key->pub = pub;
    key->publen = publen;
    strcpy(key->kid, kid);
    ks->alg = TH_ALG_ES256;
    ks->nkeys++;

    return 0;
}


int
th_keyset_can_sign(const th_keyset_t *ks)
{
    return ks->nkeys > 0 && ks->keys[0].secret != NULL;
}


int
th_keyset_add_file(th_keyset_t *ks, const char *kid, const char *path,
    const char **err)
{
    int           rc;
    FILE         *f;
    size_t        n;
    unsigned char buf[TH_KEY_FILE_MAX];

    f = fopen(path, "rb");
    if (f == NULL) {
        *err = "cannot open key file";
        return -1;
    }

    n = fread(buf, 1, sizeof(buf), f);
    rc = ferror(f) || !feof(f);
    fclose(f);

    if (rc) {
        OPENSSL_cleanse(buf, sizeof(buf));
        *err = "cannot read key file, or it is larger than 4096 bytes";
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

        free(ks->keys[i].pub);
        ks->keys[i].pub = NULL;
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
    char           *grants, *token;
    jwt_t          *jwt;
    const th_key_t *key;

    if (!th_keyset_can_sign(ks) || !json_is_object(claims)) {
        return NULL;
    }

    key = &ks->keys[0];
    token = NULL;

    grants = json_dumps(claims, JSON_COMPACT);
    if (grants == NULL) {
        return NULL;
    }

    if (jwt_new(&jwt) != 0) {
        free(grants);
        return NULL;
    }

    if (jwt_add_grants_json(jwt, grants) == 0
        && jwt_add_header(jwt, "kid", key->kid) == 0
        && jwt_set_alg(jwt,
               ks->alg == TH_ALG_ES256 ? JWT_ALG_ES256 : JWT_ALG_HS256,
               key->secret, (int) key->len)
               == 0)
    {
        token = jwt_encode_str(jwt);
    }

    jwt_free(jwt);
    free(grants);

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


th_token_status_t
th_token_verify(const th_keyset_t *ks, const char *token, const char *audience,
    time_t now, long leeway, json_t **claims)
{
    char                *grants;
    jwt_t               *jwt;
    json_t              *parsed;
    jwt_alg_t            want;
    const char          *alg, *want_name;
    const th_key_t      *key;
    th_token_status_t    status;
    const unsigned char *vkey;
    size_t               vlen;

    *claims = NULL;

    if (ks->alg == TH_ALG_ES256) {
        want = JWT_ALG_ES256;
        want_name = "ES256";

    } else {
        want = JWT_ALG_HS256;
        want_name = "HS256";
    }

    if (token == NULL || strlen(token) > 8192) {
        return TH_TOKEN_MALFORMED;
    }

    /*
     * Without a key libjwt parses the header and body but does not verify;
     * that is only used to learn which key to verify with.
     */
    if (jwt_decode(&jwt, token, NULL, 0) != 0) {
        return TH_TOKEN_MALFORMED;
    }

    alg = jwt_get_header(jwt, "alg");
    if (alg == NULL || strcmp(alg, want_name) != 0) {
        jwt_free(jwt);
        return TH_TOKEN_BAD_ALG;
    }

    key = th_keyset_find(ks, jwt_get_header(jwt, "kid"));
    jwt_free(jwt);

    if (key == NULL) {
        return TH_TOKEN_UNKNOWN_KEY;
    }

    if (ks->alg == TH_ALG_ES256) {
        vkey = key->pub;
        vlen = key->publen;

    } else {
        vkey = key->secret;
        vlen = key->len;
    }

    if (jwt_decode(&jwt, token, vkey, (int) vlen) != 0) {
        return TH_TOKEN_BAD_SIGNATURE;
    }

    if (jwt_get_alg(jwt) != want) {
        jwt_free(jwt);
        return TH_TOKEN_BAD_ALG;
    }

    grants = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);

    if (grants == NULL) {
        return TH_TOKEN_MALFORMED;
    }

    parsed = json_loads(grants, JSON_REJECT_DUPLICATES, NULL);
    free(grants);

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
