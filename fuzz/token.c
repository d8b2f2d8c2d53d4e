/*
 * Access tokens and join credentials (common/th_token.c).
 *
 * The first byte picks the key set (HS256 access keys or ES256 join keys)
 * and what the rest is: a token as a client would present it, or claims
 * that are signed with the set's key and verified back, so that claims
 * of any shape reach th_claims_check() behind a valid signature.  A token
 * from the input that verifies is a forgery: the target aborts.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "th_names.h"
#include "th_token.h"


static th_keyset_t fuzz_hs;
static th_keyset_t fuzz_es;


/* whether the token's signature is HMAC-SHA256 under an access key */

static int
fuzz_hs_signed(const char *token)
{
    size_t            i, n;
    const char       *dot;
    unsigned int      len;
    unsigned char     mac[EVP_MAX_MD_SIZE];
    char              b64[2 * EVP_MAX_MD_SIZE];
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    dot = strrchr(token, '.');
    if (dot == NULL) {
        return 0;
    }

    for (i = 0; i < fuzz_hs.nkeys; i++) {
        if (HMAC(EVP_sha256(), fuzz_hs.keys[i].secret,
                (int) fuzz_hs.keys[i].len, (const unsigned char *) token,
                dot - token, mac, &len)
            == NULL)
        {
            abort();
        }

        /* 32 bytes: 43 base64url characters, no padding */
        for (n = 0; n < 43; n++) {
            unsigned int bit = n * 6, v;

            v = (mac[bit / 8] << 8 | (bit / 8 + 1 < len ? mac[bit / 8 + 1] : 0))
                    >> (10 - bit % 8)
                & 0x3f;
            b64[n] = alpha[v];
        }

        if (strlen(dot + 1) == 43 && memcmp(dot + 1, b64, 43) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
fuzz_es_key(th_keyset_t *ks, const char *kid)
{
    FILE       *f;
    EVP_PKEY   *pkey;
    const char *err;
    char        path[] = "/tmp/th-fuzz-pem-XXXXXX";
    int         fd;

    pkey = EVP_EC_gen("P-256");
    fd = mkstemp(path);

    if (pkey == NULL || fd < 0 || (f = fdopen(fd, "w")) == NULL
        || !PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL))
    {
        abort();
    }

    fclose(f);
    EVP_PKEY_free(pkey);

    if (th_keyset_add_pem_file(ks, kid, path, &err) != 0) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }

    unlink(path);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *err;

    if (th_keyset_add(&fuzz_hs, "a1",
            (const unsigned char *) "0123456789abcdef0123456789abcdef", 32,
            &err)
            != 0
        || th_keyset_add(&fuzz_hs, "a0",
               (const unsigned char *) "fedcba9876543210fedcba9876543210", 32,
               &err)
               != 0)
    {
        abort();
    }

    fuzz_es_key(&fuzz_es, "j1");
    fuzz_es_key(&fuzz_es, "j0");

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char             *text, *token;
    json_t           *claims, *verified;
    th_keyset_t      *ks;
    const char       *audience;
    th_token_status_t status;

    if (size < 1) {
        return 0;
    }

    ks = (data[0] & 1) ? &fuzz_es : &fuzz_hs;
    audience = (data[0] & 4) ? TH_AUD_JOIN : TH_AUD_API;

    text = malloc(size);
    if (text == NULL) {
        return 0;
    }

    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    if (!(data[0] & 2)) {
        status = th_token_verify(ks, text, audience, 1700000000, 30, &verified);
        if (status == TH_TOKEN_OK) {
            if (ks != &fuzz_hs || !fuzz_hs_signed(text)) {
                fprintf(stderr, "fuzz: a token the input made verified\n");
                abort();
            }

            json_decref(verified);
        }

        (void) th_token_status_text(status);
        free(text);
        return 0;
    }

    claims = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    free(text);

    if (!json_is_object(claims)) {
        json_decref(claims);
        return 0;
    }

    token = th_token_sign(ks, claims);
    json_decref(claims);

    if (token == NULL) {
        return 0;
    }

    status = th_token_verify(ks, token, audience, 1700000000, 30, &verified);
    if (status == TH_TOKEN_OK) {
        json_decref(verified);
    }

    /* the other set must refuse it whatever the claims */
    status = th_token_verify(ks == &fuzz_hs ? &fuzz_es : &fuzz_hs, token,
        audience, 1700000000, 30, &verified);
    if (status == TH_TOKEN_OK) {
        fprintf(stderr, "fuzz: a token verified with the other key set\n");
        abort();
    }

    free(token);

    return 0;
}
