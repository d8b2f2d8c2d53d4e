/*
 * Tokens of the hospital's identity provider.
 *
 * The JWKS file is read when the configuration is (start and reload): each
 * RSA (2048 bits or more) or EC P-256 key becomes a cjose JWK once.  A
 * bearer token that is not one of ours comes here: its "alg" must be RS256
 * or ES256 and must match the type of the key its "kid" names, so an HS256
 * token "signed" with a public key is refused before its signature is
 * looked at.  cjose verifies the signature, the claims are checked here;
 * the configured claim then names the staff member the token acts as,
 * among the staff of the organisation its issuer signs in for (table
 * idp_issuers).  An e-mail names someone only when the token says it is
 * verified.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <cjose/cjose.h>

#include "ngx_http_telehealth_idp.h"


#define NGX_HTTP_TELEHEALTH_IDP_TOKEN_MAX 8192
#define NGX_HTTP_TELEHEALTH_IDP_RSA_MIN   2048
#define NGX_HTTP_TELEHEALTH_IDP_RS256     "RS256"
#define NGX_HTTP_TELEHEALTH_IDP_ES256     "ES256"


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
static ngx_uint_t ngx_http_telehealth_idp_unpadded(json_t *jwk);
static ngx_int_t ngx_http_telehealth_idp_key_usable(cjose_jwk_t *jwk,
    const char                                                  *alg);
static void ngx_http_telehealth_idp_release(void *data);
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
    json_t                        *kty, *kid, *use, *alg;
    ngx_uint_t                     i, kty_rsa;
    const char                    *want;
    cjose_jwk_t                   *key_jwk;
    ngx_pool_cleanup_t            *cln;
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

    kty_rsa = ngx_strcmp(json_string_value(kty), "RSA") == 0;

    if (kty_rsa) {
        want = NGX_HTTP_TELEHEALTH_IDP_RS256;

    } else if (ngx_strcmp(json_string_value(kty), "EC") == 0) {
        want = NGX_HTTP_TELEHEALTH_IDP_ES256;

    } else {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
            "telehealth_idp_jwks: key %uz of type \"%s\" "
            "ignored (RSA and EC only)",
            n, json_string_value(kty));
        return NGX_OK;
    }

    if (json_is_string(alg) && ngx_strcmp(json_string_value(alg), want) != 0) {
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

    key_jwk = ngx_http_telehealth_idp_unpadded(jwk)
                  ? cjose_jwk_import_json((cjose_header_t *) jwk, NULL)
                  : NULL;

    if (key_jwk == NULL
        || ngx_http_telehealth_idp_key_usable(key_jwk, want) != NGX_OK)
    {
        cjose_jwk_release(key_jwk);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_idp_jwks: key \"%s\" is not a valid "
            "%s public key",
            json_string_value(kid),
            kty_rsa ? "RSA (2048 bits or more)" : "EC P-256");
        return NGX_ERROR;
    }

    /* the key lives as long as the configuration that read it */
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        cjose_jwk_release(key_jwk);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_telehealth_idp_release;
    cln->data = key_jwk;

    key = ngx_array_push(idp->keys);
    if (key == NULL) {
        return NGX_ERROR;
    }

    key->alg = want;
    key->jwk = key_jwk;
    key->kid.len = json_string_length(kid);
    key->kid.data = ngx_pnalloc(cf->pool, key->kid.len + 1);

    if (key->kid.data == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn(key->kid.data, (u_char *) json_string_value(kid),
        key->kid.len + 1);

    return NGX_OK;
}


/*
 * The key's members are unpadded base64url (RFC 7518): cjose 0.6.2.1
 * aborts on a '=' that cuts a group short, so one is refused here.
 */

static ngx_uint_t
ngx_http_telehealth_idp_unpadded(json_t *jwk)
{
    ngx_uint_t         i;
    json_t            *v;
    static const char *members[] = { "n", "e", "x", "y", "d", "p", "q", "dp",
        "dq", "qi", "k" };

    for (i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        v = json_object_get(jwk, members[i]);

        if (json_is_string(v) && strchr(json_string_value(v), '=') != NULL) {
            return 0;
        }
    }

    return 1;
}


/* an RSA key of 2048 bits or more, or an EC key on P-256 */

static ngx_int_t
ngx_http_telehealth_idp_key_usable(cjose_jwk_t *jwk, const char *alg)
{
    if (ngx_strcmp(alg, NGX_HTTP_TELEHEALTH_IDP_RS256) == 0) {
        return cjose_jwk_get_kty(jwk, NULL) == CJOSE_JWK_KTY_RSA
                       && cjose_jwk_get_keysize(jwk, NULL)
                              >= NGX_HTTP_TELEHEALTH_IDP_RSA_MIN
                   ? NGX_OK
                   : NGX_ERROR;
    }

    return cjose_jwk_get_kty(jwk, NULL) == CJOSE_JWK_KTY_EC
                   && cjose_jwk_EC_get_curve(jwk, NULL) == CJOSE_JWK_EC_P_256
               ? NGX_OK
               : NGX_ERROR;
}


static void
ngx_http_telehealth_idp_release(void *data)
{
    cjose_jwk_release(data);
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
    size_t                         len;
    json_t                        *claims;
    uint8_t                       *payload;
    ngx_uint_t                     i;
    const char                    *alg, *kid, *refused;
    cjose_jws_t                   *jws;
    cjose_header_t                *header;
    ngx_http_telehealth_idp_key_t *key;

    claims = NULL;
    jws = NULL;
    refused = "malformed";

    if (token->len > NGX_HTTP_TELEHEALTH_IDP_TOKEN_MAX
        || !th_jws_canonical((const char *) token->data, token->len))
    {
        goto refuse;
    }

    jws = cjose_jws_import((const char *) token->data, token->len, NULL);
    if (jws == NULL) {
        goto refuse;
    }

    header = cjose_jws_get_protected(jws);
    alg = cjose_header_get(header, CJOSE_HDR_ALG, NULL);
    kid = cjose_header_get(header, CJOSE_HDR_KID, NULL);

    /* the algorithm is ours to choose, never the token's */
    if (alg == NULL
        || (ngx_strcmp(alg, NGX_HTTP_TELEHEALTH_IDP_RS256) != 0
            && ngx_strcmp(alg, NGX_HTTP_TELEHEALTH_IDP_ES256) != 0))
    {
        refused = "algorithm not accepted (RS256 and ES256 only)";
        goto refuse;
    }

    refused = "unknown key id";

    if (kid == NULL) {
        goto refuse;
    }

    key = idp->keys->elts;

    for (i = 0; i < idp->keys->nelts; i++) {
        if (key[i].kid.len == ngx_strlen(kid)
            && ngx_strncmp(key[i].kid.data, kid, key[i].kid.len) == 0)
        {
            break;
        }
    }

    if (i == idp->keys->nelts) {
        goto refuse;
    }

    key = &key[i];

    if (ngx_strcmp(key->alg, alg) != 0) {
        refused = "algorithm does not match the key's type";
        goto refuse;
    }

    if (!cjose_jws_verify(jws, key->jwk, NULL)) {
        refused = "bad signature";
        goto refuse;
    }

    if (cjose_jws_get_plaintext(jws, &payload, &len, NULL)) {
        claims = json_loadb((const char *) payload, len, JSON_REJECT_DUPLICATES,
            NULL);
    }

    if (!json_is_object(claims)) {
        json_decref(claims);
        claims = NULL;
        refused = "malformed claims";
        goto refuse;
    }

    cjose_jws_release(jws);

    return claims;

refuse:

    cjose_jws_release(jws);

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
