/*
 * Tokens of the hospital's identity provider.
 *
 * The JWKS file is read when the configuration is (start and reload): each
 * RSA or EC P-256 key becomes a PEM public key once, through OpenSSL.  A
 * bearer token that is not one of ours comes here: its "alg" must be RS256
 * or ES256 and must match the type of the key its "kid" names, so an HS256
 * token "signed" with a public key is refused before libjwt sees it.  The
 * signature is verified by libjwt, the claims here; the configured claim
 * then names the staff member the token acts as, among the staff of the
 * organisation its issuer signs in for (table idp_issuers).  An e-mail
 * names someone only when the token says it is verified.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "ngx_http_telehealth_idp.h"


#define NGX_HTTP_TELEHEALTH_IDP_TOKEN_MAX 8192
#define NGX_HTTP_TELEHEALTH_IDP_RSA_MIN   2048


enum {
    NGX_HTTP_TELEHEALTH_IDP_COL_ID = 0,
    NGX_HTTP_TELEHEALTH_IDP_COL_ORG,
    NGX_HTTP_TELEHEALTH_IDP_COL_ROLE,
    NGX_HTTP_TELEHEALTH_IDP_COL_NAME,
    NGX_HTTP_TELEHEALTH_IDP_COL_ACTIVE,
    NGX_HTTP_TELEHEALTH_IDP_COLS
};


/*
 * The staff of the issuer's organisation only (th_idp_staff()): $1
 * the issuer, $2 "t" to match by e-mail, $3 the claim's value.  At most two
 * rows: a value that names two accounts names none.
 */
static const char ngx_http_telehealth_idp_sql[] =
    "SELECT id, org_id, role, display_name, active"
    " FROM th_idp_staff($1, $2::boolean, $3)";


typedef struct {
    ngx_http_telehealth_handler_pt done;
    time_t                         iat;
    time_t                         exp;
    ngx_str_t                      jti;
    ngx_str_t                      value;
} ngx_http_telehealth_idp_ctx_t;


static char *ngx_http_telehealth_idp_load(ngx_conf_t *cf,
    ngx_http_telehealth_idp_conf_t                   *idp);
static ngx_int_t ngx_http_telehealth_idp_add_key(ngx_conf_t *cf,
    ngx_http_telehealth_idp_conf_t *idp, json_t *jwk, size_t n);
static EVP_PKEY *ngx_http_telehealth_idp_rsa(ngx_conf_t *cf, json_t *jwk);
static EVP_PKEY *ngx_http_telehealth_idp_ec(ngx_conf_t *cf, json_t *jwk);
static ngx_int_t ngx_http_telehealth_idp_b64(ngx_pool_t *pool, json_t *obj,
    const char *name, ngx_str_t *out);
static json_t *ngx_http_telehealth_idp_verify(ngx_http_request_t *r,
    ngx_http_telehealth_idp_conf_t *idp, ngx_str_t *token);
static const char *ngx_http_telehealth_idp_check(ngx_http_telehealth_idp_conf_t
                                                     *idp,
    json_t                                           *claims);
static void ngx_http_telehealth_idp_found(ngx_http_telehealth_pg_req_t *pg);


char *
ngx_http_telehealth_idp_init_conf(ngx_conf_t *cf,
    ngx_http_telehealth_idp_conf_t           *idp)
{
    ngx_conf_init_value(idp->leeway, 60);

    if (idp->claim.data == NULL) {
        ngx_str_set(&idp->claim, "email");
    }

    if (idp->leeway > 300) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_idp_leeway\" must not exceed 5m");
        return NGX_CONF_ERROR;
    }

    /* read on every start and reload: a new JWKS file takes effect then */
    if (idp->jwks.len == 0) {
        return NGX_CONF_OK;
    }

    return ngx_http_telehealth_idp_load(cf, idp);
}


/* reads and converts the JWKS file; NGX_CONF_OK or NGX_CONF_ERROR */

static char *
ngx_http_telehealth_idp_load(ngx_conf_t *cf,
    ngx_http_telehealth_idp_conf_t      *idp)
{
    json_t      *jwks, *keys, *jwk;
    size_t       i;
    ngx_str_t    path;
    json_error_t err;

    path = idp->jwks;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (idp->issuer.len == 0 || idp->audience.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_idp_jwks\" requires "
            "\"telehealth_idp_issuer\" and "
            "\"telehealth_idp_audience\"");
        return NGX_CONF_ERROR;
    }

    jwks = json_load_file((char *) path.data, JSON_REJECT_DUPLICATES, &err);
    if (jwks == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_idp_jwks \"%V\": %s (line %d)", &path, err.text,
            err.line);
        return NGX_CONF_ERROR;
    }

    keys = json_object_get(jwks, "keys");
    if (!json_is_array(keys)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_idp_jwks \"%V\": no \"keys\" array", &path);
        json_decref(jwks);
        return NGX_CONF_ERROR;
    }

    idp->keys = ngx_array_create(cf->pool, json_array_size(keys) + 1,
        sizeof(ngx_http_telehealth_idp_key_t));
    if (idp->keys == NULL) {
        json_decref(jwks);
        return NGX_CONF_ERROR;
    }

    json_array_foreach (keys, i, jwk) {
        if (ngx_http_telehealth_idp_add_key(cf, idp, jwk, i) != NGX_OK) {
            json_decref(jwks);
            return NGX_CONF_ERROR;
        }
    }

    json_decref(jwks);

    ngx_log_error(NGX_LOG_INFO, cf->log, 0,
        "telehealth: %ui identity provider key(s) from \"%V\"",
        idp->keys->nelts, &path);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_telehealth_idp_add_key(ngx_conf_t *cf,
    ngx_http_telehealth_idp_conf_t *idp, json_t *jwk, size_t n)
{
    BIO                           *bio;
    char                          *data;
    long                           len;
    json_t                        *kty, *kid, *use, *alg;
    EVP_PKEY                      *pkey;
    ngx_uint_t                     i, want;
    ngx_http_telehealth_idp_key_t *key;

    kty = json_object_get(jwk, "kty");
    kid = json_object_get(jwk, "kid");
    use = json_object_get(jwk, "use");
    alg = json_object_get(jwk, "alg");

    if (!json_is_string(kty)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_idp_jwks: key %uz has no \"kty\"", n);
        return NGX_ERROR;
    }

    /* a JWKS may hold keys for other uses: those are not ours to judge */
    if (json_is_string(use) && ngx_strcmp(json_string_value(use), "sig") != 0) {
        return NGX_OK;
    }

    if (ngx_strcmp(json_string_value(kty), "RSA") == 0) {
        want = JWT_ALG_RS256;

    } else if (ngx_strcmp(json_string_value(kty), "EC") == 0) {
        want = JWT_ALG_ES256;

    } else {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
            "telehealth_idp_jwks: key %uz of type \"%s\" "
            "ignored (RSA and EC only)",
            n, json_string_value(kty));
        return NGX_OK;
    }

    if (json_is_string(alg)
        && ngx_strcmp(json_string_value(alg),
               (want == JWT_ALG_RS256 ? "RS256" : "ES256"))
               != 0)
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
            "telehealth_idp_jwks: key %uz for \"%s\" ignored "
            "(RS256 and ES256 only)",
            n, json_string_value(alg));
        return NGX_OK;
    }

    /* rotation works by kid: a key without one could never be chosen */
    if (!json_is_string(kid) || json_string_length(kid) == 0
        || json_string_length(kid) > 256)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_idp_jwks: key %uz needs a \"kid\"", n);
        return NGX_ERROR;
    }

    key = idp->keys->elts;

    for (i = 0; i < idp->keys->nelts; i++) {
        if (key[i].kid.len == json_string_length(kid)
            && ngx_strncmp(key[i].kid.data, json_string_value(kid),
                   key[i].kid.len)
                   == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                "telehealth_idp_jwks: duplicate kid \"%s\"",
                json_string_value(kid));
            return NGX_ERROR;
        }
    }

    pkey = (want == JWT_ALG_RS256) ? ngx_http_telehealth_idp_rsa(cf, jwk)
                                   : ngx_http_telehealth_idp_ec(cf, jwk);
    if (pkey == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_idp_jwks: key \"%s\" is not a valid "
            "%s public key",
            json_string_value(kid),
            want == JWT_ALG_RS256 ? "RSA (2048 bits or more)" : "EC P-256");
        return NGX_ERROR;
    }

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
        BIO_free(bio);
        EVP_PKEY_free(pkey);
        return NGX_ERROR;
    }

    EVP_PKEY_free(pkey);

    len = BIO_get_mem_data(bio, &data);

    key = ngx_array_push(idp->keys);
    if (key == NULL || len <= 0) {
        BIO_free(bio);
        return NGX_ERROR;
    }

    key->alg = want;
    key->pem.len = len;
    key->pem.data = ngx_pnalloc(cf->pool, len + 1);
    key->kid.len = json_string_length(kid);
    key->kid.data = ngx_pnalloc(cf->pool, key->kid.len + 1);

    if (key->pem.data == NULL || key->kid.data == NULL) {
        BIO_free(bio);
        return NGX_ERROR;
    }

    ngx_cpystrn(key->pem.data, (u_char *) data, len + 1);
    ngx_cpystrn(key->kid.data, (u_char *) json_string_value(kid),
        key->kid.len + 1);

    BIO_free(bio);

    return NGX_OK;
}


static EVP_PKEY *
ngx_http_telehealth_idp_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY     *pkey;
    OSSL_PARAM   *params;
    EVP_PKEY_CTX *pctx;

    pkey = NULL;
    params = OSSL_PARAM_BLD_to_param(bld);
    pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1
        || EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);

    return pkey;
}


static EVP_PKEY *
ngx_http_telehealth_idp_rsa(ngx_conf_t *cf, json_t *jwk)
{
    BIGNUM         *n, *e;
    EVP_PKEY       *pkey;
    ngx_str_t       nb, eb;
    OSSL_PARAM_BLD *bld;

    if (ngx_http_telehealth_idp_b64(cf->temp_pool, jwk, "n", &nb) != NGX_OK
        || ngx_http_telehealth_idp_b64(cf->temp_pool, jwk, "e", &eb) != NGX_OK)
    {
        return NULL;
    }

    pkey = NULL;
    n = BN_bin2bn(nb.data, nb.len, NULL);
    e = BN_bin2bn(eb.data, eb.len, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (n != NULL && e != NULL && bld != NULL
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
    {
        pkey = ngx_http_telehealth_idp_fromdata("RSA", bld);
    }

    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);

    if (pkey != NULL
        && EVP_PKEY_get_bits(pkey) < NGX_HTTP_TELEHEALTH_IDP_RSA_MIN)
    {
        EVP_PKEY_free(pkey);
        return NULL;
    }

    return pkey;
}


static EVP_PKEY *
ngx_http_telehealth_idp_ec(ngx_conf_t *cf, json_t *jwk)
{
    json_t         *crv;
    EVP_PKEY       *pkey;
    ngx_str_t       x, y;
    OSSL_PARAM_BLD *bld;
    u_char          point[65];

    crv = json_object_get(jwk, "crv");

    if (!json_is_string(crv) || ngx_strcmp(json_string_value(crv), "P-256")) {
        return NULL;
    }

    if (ngx_http_telehealth_idp_b64(cf->temp_pool, jwk, "x", &x) != NGX_OK
        || ngx_http_telehealth_idp_b64(cf->temp_pool, jwk, "y", &y) != NGX_OK
        || x.len != 32 || y.len != 32)
    {
        return NULL;
    }

    /* an uncompressed point; OpenSSL checks that it is on the curve */
    point[0] = 0x04;
    ngx_memcpy(point + 1, x.data, 32);
    ngx_memcpy(point + 33, y.data, 32);

    pkey = NULL;
    bld = OSSL_PARAM_BLD_new();

    if (bld != NULL
        && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
               "prime256v1", 0)
               == 1
        && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
               sizeof(point))
               == 1)
    {
        pkey = ngx_http_telehealth_idp_fromdata("EC", bld);
    }

    OSSL_PARAM_BLD_free(bld);

    return pkey;
}


static ngx_int_t
ngx_http_telehealth_idp_b64(ngx_pool_t *pool, json_t *obj, const char *name,
    ngx_str_t *out)
{
    json_t   *v;
    ngx_str_t src;

    v = json_object_get(obj, name);
    if (!json_is_string(v) || json_string_length(v) == 0) {
        return NGX_ERROR;
    }

    src.data = (u_char *) json_string_value(v);
    src.len = json_string_length(v);

    out->data = ngx_pnalloc(pool, ngx_base64_decoded_length(src.len));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    return ngx_decode_base64url(out, &src);
}


ngx_int_t
ngx_http_telehealth_idp_authenticate(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_telehealth_handler_pt done)
{
    json_t                         *claims, *v;
    u_char                          hash[65];
    json_t                         *verified;
    ngx_int_t                       rc;
    ngx_uint_t                      by_email;
    const char                    **params, *refused;
    ngx_http_telehealth_ctx_t      *ctx;
    ngx_http_telehealth_idp_ctx_t  *ictx;
    ngx_http_telehealth_idp_conf_t *idp;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    idp = &ctx->mcf->idp;

    if (idp->keys == NULL) {
        return NGX_DECLINED;
    }

    claims = ngx_http_telehealth_idp_verify(r, idp, token);
    if (claims == NULL) {
        return NGX_DECLINED;
    }

    refused = ngx_http_telehealth_idp_check(idp, claims);
    if (refused != NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: identity provider token refused: %s", refused);
        json_decref(claims);
        return NGX_DECLINED;
    }

    ictx = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_idp_ctx_t));
    params = ngx_palloc(r->pool, 3 * sizeof(char *));
    if (ictx == NULL || params == NULL) {
        json_decref(claims);
        return NGX_ERROR;
    }

    ictx->done = done;
    ictx->exp = (time_t) json_integer_value(json_object_get(claims, "exp"));
    ictx->iat = (time_t) json_integer_value(json_object_get(claims, "iat"));

    v = json_object_get(claims, (char *) idp->claim.data);

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > 320)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: identity provider token refused: "
            "no \"%V\" claim",
            &idp->claim);
        json_decref(claims);
        return NGX_DECLINED;
    }

    ictx->value.len = json_string_length(v);
    ictx->value.data = ngx_pnalloc(r->pool, ictx->value.len + 1);
    if (ictx->value.data == NULL) {
        json_decref(claims);
        return NGX_ERROR;
    }

    by_email = (ngx_strcmp(idp->claim.data, "email") == 0);

    if (by_email) {
        /* anyone can put any address in an unverified e-mail claim */
        verified = json_object_get(claims, "email_verified");

        if (!json_is_true(verified)
            && !(json_is_string(verified)
                 && ngx_strcmp(json_string_value(verified), "true") == 0))
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                "telehealth: identity provider token refused: "
                "e-mail not verified (\"email_verified\")");
            json_decref(claims);
            return NGX_DECLINED;
        }

        ngx_strlow(ictx->value.data, (u_char *) json_string_value(v),
            ictx->value.len);

    } else {
        ngx_memcpy(ictx->value.data, json_string_value(v), ictx->value.len);
    }

    ictx->value.data[ictx->value.len] = '\0';
    json_decref(claims);

    /* the token's own revocation id: logout works as for ours */
    th_sha256_hex(token->data, token->len, (char *) hash);

    ictx->jti.len = sizeof("idp-") - 1 + 32;
    ictx->jti.data = ngx_pnalloc(r->pool, ictx->jti.len + 1);
    if (ictx->jti.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ictx->jti.data, "idp-%*s%Z", (size_t) 32, hash);

    ctx->data = ictx;
    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (ctx->pg == NULL) {
        return NGX_ERROR;
    }

    /* the token's "iss" equals it (ngx_http_telehealth_idp_check()) */
    params[0] = (char *) idp->issuer.data;
    params[1] = by_email ? "t" : "f";
    params[2] = (char *) ictx->value.data;

    ctx->pg->handler = ngx_http_telehealth_idp_found;
    ctx->pg->data = r;

    rc = ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_idp_sql, 3,
        params);
    if (rc != NGX_AGAIN) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }

    return NGX_AGAIN;
}


/* the claims of a token whose header and signature hold, or NULL */

static json_t *
ngx_http_telehealth_idp_verify(ngx_http_request_t *r,
    ngx_http_telehealth_idp_conf_t *idp, ngx_str_t *token)
{
    char                          *grants;
    jwt_t                         *jwt;
    u_char                        *dot;
    json_t                        *header, *alg, *kid, *claims;
    ngx_str_t                      src, dst;
    ngx_uint_t                     i, want;
    const char                    *refused;
    ngx_http_telehealth_idp_key_t *key;

    claims = NULL;
    header = NULL;
    refused = "malformed";

    if (token->len > NGX_HTTP_TELEHEALTH_IDP_TOKEN_MAX) {
        goto refuse;
    }

    dot = ngx_strlchr(token->data, token->data + token->len, '.');
    if (dot == NULL) {
        goto refuse;
    }

    src.data = token->data;
    src.len = dot - token->data;

    dst.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(src.len));
    if (dst.data == NULL || ngx_decode_base64url(&dst, &src) != NGX_OK) {
        goto refuse;
    }

    header =
        json_loadb((char *) dst.data, dst.len, JSON_REJECT_DUPLICATES, NULL);
    alg = json_object_get(header, "alg");
    kid = json_object_get(header, "kid");

    if (!json_is_string(alg)) {
        goto refuse;
    }

    /* the algorithm is ours to choose, never the token's */
    if (ngx_strcmp(json_string_value(alg), "RS256") == 0) {
        want = JWT_ALG_RS256;

    } else if (ngx_strcmp(json_string_value(alg), "ES256") == 0) {
        want = JWT_ALG_ES256;

    } else {
        refused = "algorithm not accepted (RS256 and ES256 only)";
        goto refuse;
    }

    refused = "unknown key id";

    if (!json_is_string(kid)) {
        goto refuse;
    }

    key = idp->keys->elts;

    for (i = 0; i < idp->keys->nelts; i++) {
        if (key[i].kid.len == json_string_length(kid)
            && ngx_strncmp(key[i].kid.data, json_string_value(kid),
                   key[i].kid.len)
                   == 0)
        {
            break;
        }
    }

    if (i == idp->keys->nelts) {
        goto refuse;
    }

    key = &key[i];

    if (key->alg != want) {
        refused = "algorithm does not match the key's type";
        goto refuse;
    }

    if (jwt_decode(&jwt, (char *) token->data, key->pem.data,
            (int) key->pem.len)
        != 0)
    {
        refused = "bad signature";
        goto refuse;
    }

    if ((ngx_uint_t) jwt_get_alg(jwt) != want) {
        jwt_free(jwt);
        refused = "algorithm does not match the key's type";
        goto refuse;
    }

    grants = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);

    if (grants != NULL) {
        claims = json_loads(grants, JSON_REJECT_DUPLICATES, NULL);
        free(grants);
    }

    if (!json_is_object(claims)) {
        json_decref(claims);
        claims = NULL;
        refused = "malformed claims";
        goto refuse;
    }

    json_decref(header);

    return claims;

refuse:

    json_decref(header);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
        "telehealth: identity provider token refused: %s", refused);

    return NULL;
}


static ngx_uint_t
ngx_http_telehealth_idp_has_audience(json_t *aud, ngx_str_t *audience)
{
    size_t  i;
    json_t *item;

    if (json_is_string(aud)) {
        return json_string_length(aud) == audience->len
               && ngx_strncmp(json_string_value(aud), audience->data,
                      audience->len)
                      == 0;
    }

    if (json_is_array(aud)) {
        json_array_foreach (aud, i, item) {
            if (json_is_string(item)
                && ngx_http_telehealth_idp_has_audience(item, audience))
            {
                return 1;
            }
        }
    }

    return 0;
}


/* NULL when the claims are acceptable, or why not */

static const char *
ngx_http_telehealth_idp_check(ngx_http_telehealth_idp_conf_t *idp,
    json_t                                                   *claims)
{
    json_t    *exp, *nbf, *iss;
    json_int_t now;

    now = (json_int_t) ngx_time();

    exp = json_object_get(claims, "exp");
    if (!json_is_integer(exp)) {
        return "no \"exp\"";
    }

    if (now - idp->leeway >= json_integer_value(exp)) {
        return "expired";
    }

    nbf = json_object_get(claims, "nbf");
    if (nbf != NULL
        && (!json_is_integer(nbf)
            || now + idp->leeway < json_integer_value(nbf)))
    {
        return "not yet valid";
    }

    iss = json_object_get(claims, "iss");
    if (!json_is_string(iss) || json_string_length(iss) != idp->issuer.len
        || ngx_strncmp(json_string_value(iss), idp->issuer.data,
               idp->issuer.len)
               != 0)
    {
        return "wrong issuer";
    }

    if (!ngx_http_telehealth_idp_has_audience(json_object_get(claims, "aud"),
            &idp->audience))
    {
        return "wrong audience";
    }

    return NULL;
}


static void
ngx_http_telehealth_idp_found(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_str_t                      active;
    ngx_http_request_t            *r;
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_caller_t  *caller;
    ngx_http_telehealth_idp_ctx_t *ictx;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    ictx = ctx->data;
    caller = &ctx->caller;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    if (PQntuples(pg->result) != 1) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: identity provider token refused: "
            "%s staff account for its \"%V\"",
            PQntuples(pg->result) ? "more than one" : "no",
            &ctx->mcf->idp.claim);
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;
    }

    if (PQnfields(pg->result) != NGX_HTTP_TELEHEALTH_IDP_COLS
        || ngx_http_telehealth_pg_value(r->pool, pg->result, 0,
            NGX_HTTP_TELEHEALTH_IDP_COL_ID, &caller->id)
        || ngx_http_telehealth_pg_value(r->pool, pg->result, 0,
            NGX_HTTP_TELEHEALTH_IDP_COL_ORG, &caller->org)
        || ngx_http_telehealth_pg_value(r->pool, pg->result, 0,
            NGX_HTTP_TELEHEALTH_IDP_COL_ROLE, &caller->role)
        || ngx_http_telehealth_pg_value(r->pool, pg->result, 0,
            NGX_HTTP_TELEHEALTH_IDP_COL_NAME, &caller->name)
        || ngx_http_telehealth_pg_value(r->pool, pg->result, 0,
            NGX_HTTP_TELEHEALTH_IDP_COL_ACTIVE, &active))
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (active.len != 1 || active.data[0] != 't') {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: identity provider token refused: "
            "deactivated account");
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED,
            "This account is deactivated.");
        return;
    }

    caller->staff = 1;
    caller->jti = ictx->jti;
    caller->iat = ictx->iat;
    caller->exp = ictx->exp;

    ngx_http_telehealth_pg_release(pg);

    ictx->done(r);
}
