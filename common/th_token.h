/*
 * Access tokens and join credentials: JWTs signed with a key set.
 *
 * Access tokens are HS256 (a secret only nginx holds); join credentials
 * are ES256 (nginx holds the private keys, Janus the public ones), so a
 * media server can verify join credentials but sign nothing.  A key set
 * holds keys of one algorithm only, and a token is verified with the
 * algorithm of the set, never the one its header names.
 *
 * The first key of a set signs, every key verifies, so keys rotate by
 * adding the new key in front and dropping the old one once the tokens it
 * signed have expired.  The token names its key with the "kid" header.
 * Shared by the nginx module (signs, verifies) and the Janus plugin
 * (verifies join credentials).
 */

#ifndef TH_TOKEN_H
#define TH_TOKEN_H

#include <stddef.h>
#include <time.h>
#include <jansson.h>

#define TH_KEYSET_MAX   16
#define TH_KID_MAX      64
#define TH_KEY_MIN_LEN  32
#define TH_TOKEN_ID_LEN 22 /* 16 random bytes, base64url */

typedef enum { TH_ALG_HS256 = 0, TH_ALG_ES256 } th_alg_t;

typedef struct {
    char           kid[TH_KID_MAX];
    unsigned char *secret; /* HS256: the secret; NULL for ES256 */
    size_t         len;
    void          *jwk;      /* cjose_jwk_t: signs and verifies */
    unsigned       can_sign; /* HS256, or ES256 with the private half */
} th_key_t;

typedef struct {
    th_key_t keys[TH_KEYSET_MAX];
    size_t   nkeys;
    th_alg_t alg; /* of every key; set by the first key added */
} th_keyset_t;

typedef enum {
    TH_TOKEN_OK = 0,
    TH_TOKEN_MALFORMED,
    TH_TOKEN_UNKNOWN_KEY,
    TH_TOKEN_BAD_ALG,
    TH_TOKEN_BAD_SIGNATURE,
    TH_TOKEN_EXPIRED,
    TH_TOKEN_NOT_YET_VALID,
    TH_TOKEN_WRONG_AUDIENCE,
    TH_TOKEN_WRONG_ISSUER
} th_token_status_t;

/* Returns 0, or -1 with a reason in err (short key, duplicate kid, full). */
int th_keyset_add(th_keyset_t *ks, const char *kid, const unsigned char *secret,
    size_t len, const char **err);

/* Reads the secret from a file; trailing whitespace is not part of it. */
int th_keyset_add_file(th_keyset_t *ks, const char *kid, const char *path,
    const char **err);

/*
 * Adds an ES256 key (P-256) from a PEM file: a private key (the set can
 * sign and verify) or a public key (verify only).  The set must be empty
 * or hold ES256 keys.
 */
int th_keyset_add_pem_file(th_keyset_t *ks, const char *kid, const char *path,
    const char **err);

/* 1 if the first key can sign (HS256, or ES256 with its private key). */
int th_keyset_can_sign(const th_keyset_t *ks);

/* Wipes and frees every secret. */
void th_keyset_clear(th_keyset_t *ks);

/*
 * Signs claims (a JSON object) with the first key.  Returns a string to
 * free with free(), or NULL.
 */
char *th_token_sign(const th_keyset_t *ks, json_t *claims);

/*
 * Verifies signature, algorithm (that of the key set), "exp", "nbf",
 * "aud" and "iss".  On
 * TH_TOKEN_OK *claims holds a new reference the caller must json_decref().
 * leeway is the clock skew tolerated, in seconds.
 */
th_token_status_t th_token_verify(const th_keyset_t *ks, const char *token,
    const char *audience, time_t now, long leeway, json_t **claims);

const char *th_token_status_text(th_token_status_t status);

/*
 * 1 if a compact JWS is in canonical unpadded base64url as far as the
 * signature's text goes: no '=', and no stray bits in the signature's last
 * character (otherwise several texts would carry one signature).  0 for a
 * text that is malformed that way; the rest is checked when verifying.
 */
int th_jws_canonical(const char *token, size_t len);

/* A random identifier ("jti"): TH_TOKEN_ID_LEN chars plus NUL. */
int th_token_new_id(char *buf, size_t size);

/*
 * nbytes random bytes as base64url without padding; buf needs
 * 4 * ceil(nbytes / 3) + 1 bytes.  Returns 0 or -1.
 */
int th_random_b64url(char *buf, size_t size, size_t nbytes);

/* Lower-case hex SHA-256 of data into buf (65 bytes). */
void th_sha256_hex(const void *data, size_t len, char buf[65]);

#endif /* TH_TOKEN_H */
