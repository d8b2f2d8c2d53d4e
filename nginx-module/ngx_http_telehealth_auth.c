/*
 * Access tokens.  Login is throttled per account and per client address
 * (ngx_http_telehealth_throttle.c), looks the account up in PostgreSQL,
 * verifies the password on the thread pool, writes an audit row of the
 * attempt whatever its outcome, and signs an HS256 token with the first
 * key of telehealth_signing_key.  Every other request presents that token; it
 * is verified here and checked against the revocations this nginx keeps in
 * shared memory (ngx_http_telehealth_revocations.c): no network round trip.
 * Logout revokes the token's id, in Redis and on every node, until the
 * token would have expired anyway.  GET /me answers from the token's claims.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_auth.h"
#include "ngx_http_telehealth_idp.h"
#include "ngx_http_telehealth_password.h"
#include "ngx_http_telehealth_redis.h"
#include "ngx_http_telehealth_revocations.h"
#include "ngx_http_telehealth_throttle.h"
#include "th_lua.h"

#include <openssl/crypto.h>


/*
 * Tokens this worker verified, by their text: a token seen again is not
 * parsed and verified again (its signature, issuer and audience cannot
 * change; its expiry is checked on every use, its revocation too).  Keys
 * only change with a reload, which starts new workers with an empty cache.
 */
#define NGX_HTTP_TELEHEALTH_TOKEN_CACHE 1024

typedef struct {
    u_char                      *token; /* NULL: empty; the allocation */
    size_t                       len;
    ngx_http_telehealth_caller_t caller; /* its strings in the allocation */
} ngx_http_telehealth_token_cached_t;


/* the columns of both queries below, in this order */
enum {
    NGX_HTTP_TELEHEALTH_COL_HASH = 0,
    NGX_HTTP_TELEHEALTH_COL_ID,
    NGX_HTTP_TELEHEALTH_COL_TYPE,
    NGX_HTTP_TELEHEALTH_COL_ORG,
    NGX_HTTP_TELEHEALTH_COL_ROLE,
    NGX_HTTP_TELEHEALTH_COL_NAME,
    NGX_HTTP_TELEHEALTH_COL_EMAIL,
    NGX_HTTP_TELEHEALTH_COL_ACTIVE,
    NGX_HTTP_TELEHEALTH_COLS
};


/* $1 e-mail, $2 organisation or NULL (sql/functions/people.sql) */
static const char ngx_http_telehealth_login_sql[] =
    "SELECT * FROM th_login_account($1, $2::uuid)";

/* $1 caller, $2 org, $3 "staff" or "patient" */
static const char ngx_http_telehealth_me_sql[] =
    "SELECT * FROM th_me($1, $2, $3)";

/* $1 org, $2 "staff" or "patient", $3 person (all NULL: no such account),
 * $4 client address, $5 status (th_audit_login()) */
static const char ngx_http_telehealth_login_audit_sql[] =
    "SELECT th_audit_login($1::uuid, $2, $3::uuid, $4, $5::integer)";


typedef struct {
    ngx_str_t  hash;
    ngx_str_t  id;
    ngx_str_t  type;
    ngx_str_t  org;
    ngx_str_t  role;
    ngx_str_t  name;
    ngx_str_t  email;
    ngx_uint_t active;
    ngx_uint_t found;     /* the account exists */
    ngx_uint_t status;    /* of the answer, audited first */
    json_t    *answer;    /* 200: the login answer */
    char      *org_asked; /* "organisation", or NULL */
    /* the address's accounts in other organisations, tried in turn
     * while the password does not match (docs/api.md, "Log in") */
    ngx_array_t *others;
    ngx_uint_t   next;
} ngx_http_telehealth_person_t;


static ngx_int_t ngx_http_telehealth_bearer(ngx_http_request_t *r,
    ngx_str_t                                                  *token);
static ngx_int_t ngx_http_telehealth_token_cached(ngx_http_request_t *r,
    ngx_str_t *token, ngx_http_telehealth_caller_t *caller);
static void ngx_http_telehealth_token_cache(ngx_str_t *token,
    ngx_http_telehealth_caller_t                      *caller);
static void ngx_http_telehealth_check_revoked(ngx_http_request_t *r);
static void ngx_http_telehealth_login_checked(ngx_http_request_t *r,
    ngx_int_t                                                     rc);
static void ngx_http_telehealth_login_audit(ngx_http_request_t *r,
    ngx_uint_t                                                  status);
static void ngx_http_telehealth_login_audited(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_login_found(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_login_next(ngx_http_request_t *r,
    ngx_http_telehealth_person_t                              *person);
static void ngx_http_telehealth_login_verified(ngx_http_request_t *r,
    ngx_int_t                                                      rc);
static ngx_int_t ngx_http_telehealth_person(ngx_pool_t *pool, PGresult *res,
    int row, ngx_http_telehealth_person_t *person);
static json_t *ngx_http_telehealth_person_json(
    ngx_http_telehealth_person_t *person);
static void ngx_http_telehealth_logout_done(void *data, redisReply *reply);
static void ngx_http_telehealth_me_found(ngx_http_telehealth_pg_req_t *pg);
static ngx_int_t ngx_http_telehealth_me_claims(ngx_http_request_t *r,
    ngx_http_telehealth_caller_t                                  *caller);


static ngx_http_telehealth_token_cached_t
    ngx_http_telehealth_tokens[NGX_HTTP_TELEHEALTH_TOKEN_CACHE];


void
ngx_http_telehealth_authenticate(ngx_http_request_t *r,
    ngx_http_telehealth_handler_pt                   next)
{
    json_t                    *claims;
    ngx_str_t                  token;
    ngx_int_t                  rc;
    th_token_status_t          status;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    ctx->next = next;

    if (ngx_http_telehealth_bearer(r, &token) != NGX_OK) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;
    }

    rc = ngx_http_telehealth_token_cached(r, &token, &ctx->caller);

    if (rc == NGX_OK) {
        ngx_http_telehealth_check_revoked(r);
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    status = th_token_verify(ctx->mcf->keyset, (char *) token.data, TH_AUD_API,
        ngx_time(), 0, &claims);

    /* not one of ours (another kid or algorithm): the identity provider's? */
    if (status == TH_TOKEN_UNKNOWN_KEY || status == TH_TOKEN_BAD_ALG
        || status == TH_TOKEN_MALFORMED)
    {
        rc = ngx_http_telehealth_idp_authenticate(r, &token,
            ngx_http_telehealth_check_revoked);
        if (rc == NGX_AGAIN) {
            return;
        }

        if (rc == NGX_ERROR) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (status != TH_TOKEN_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: access token refused: %s",
            th_token_status_text(status));
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;
    }

    rc = ngx_http_telehealth_caller(r, claims, &ctx->caller);
    ctx->caller.own = 1;
    json_decref(claims);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: access token lacks claims");
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;
    }

    ngx_http_telehealth_token_cache(&token, &ctx->caller);

    ngx_http_telehealth_check_revoked(r);
}


void
ngx_http_telehealth_authenticate_caller(ngx_http_request_t *r,
    ngx_http_telehealth_handler_pt                          next)
{
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    ctx->next = next;

    ngx_http_telehealth_check_revoked(r);
}


/*
 * ctx->caller is known: a token that logout revoked, or one issued before
 * its holder was cut off, goes no further.  While the revocations feed is
 * down nothing can be told: 503.
 */

static void
ngx_http_telehealth_check_revoked(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    rc = ngx_http_telehealth_revocations_check(&ctx->caller.jti,
        &ctx->caller.id, ctx->caller.iat);
    switch (rc) {

    case NGX_OK:
        /* a guest's token reaches its session's chat and events, no more */
        if (ctx->caller.guest && !ctx->guests) {
            ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_FORBIDDEN, NULL);
            return;
        }

        ctx->next(r);
        return;

    case NGX_DECLINED:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: revoked access token used");
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;

    default:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
            "telehealth: access token not checked: the "
            "revocations feed is down");
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }
}


static ngx_uint_t
ngx_http_telehealth_token_slot(ngx_str_t *token)
{
    return ngx_hash_key(token->data, token->len)
           % NGX_HTTP_TELEHEALTH_TOKEN_CACHE;
}


/* NGX_OK: caller filled from the cache (strings in r->pool); NGX_DECLINED */

static ngx_int_t
ngx_http_telehealth_token_cached(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_telehealth_caller_t *caller)
{
    u_char                             *p;
    size_t                              size;
    ngx_uint_t                          i;
    ngx_str_t                          *s[6], *d[6];
    ngx_http_telehealth_token_cached_t *tc;

    tc = &ngx_http_telehealth_tokens[ngx_http_telehealth_token_slot(token)];

    /* in constant time: a neighbour's token must not leak by timing */
    if (tc->token == NULL || tc->len != token->len
        || CRYPTO_memcmp(tc->token, token->data, token->len) != 0
        || tc->caller.exp <= ngx_time())
    {
        return NGX_DECLINED;
    }

    *caller = tc->caller;

    s[0] = &tc->caller.id;
    s[1] = &tc->caller.org;
    s[2] = &tc->caller.role;
    s[3] = &tc->caller.name;
    s[4] = &tc->caller.jti;
    s[5] = &tc->caller.email;
    d[0] = &caller->id;
    d[1] = &caller->org;
    d[2] = &caller->role;
    d[3] = &caller->name;
    d[4] = &caller->jti;
    d[5] = &caller->email;

    size = 0;
    for (i = 0; i < 6; i++) {
        size += s[i]->len + 1;
    }

    /* the entry may be replaced while the request goes on */
    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < 6; i++) {
        d[i]->data = p;
        p = ngx_cpymem(p, s[i]->data, s[i]->len);
        *p++ = '\0';
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_token_cache(ngx_str_t *token,
    ngx_http_telehealth_caller_t          *caller)
{
    u_char                             *p, *block;
    size_t                              size;
    ngx_uint_t                          i;
    ngx_str_t                          *s[6];
    ngx_http_telehealth_token_cached_t *tc;

    tc = &ngx_http_telehealth_tokens[ngx_http_telehealth_token_slot(token)];

    s[0] = &caller->id;
    s[1] = &caller->org;
    s[2] = &caller->role;
    s[3] = &caller->name;
    s[4] = &caller->jti;
    s[5] = &caller->email;

    size = token->len;
    for (i = 0; i < 6; i++) {
        size += s[i]->len + 1;
    }

    block = ngx_alloc(size, ngx_cycle->log);
    if (block == NULL) {
        return;
    }

    if (tc->token != NULL) {
        ngx_free(tc->token);
    }

    tc->token = block;
    tc->len = token->len;
    tc->caller = *caller;

    p = ngx_cpymem(block, token->data, token->len);

    s[0] = &tc->caller.id;
    s[1] = &tc->caller.org;
    s[2] = &tc->caller.role;
    s[3] = &tc->caller.name;
    s[4] = &tc->caller.jti;
    s[5] = &tc->caller.email;

    for (i = 0; i < 6; i++) {
        p = ngx_cpymem(p, s[i]->data, s[i]->len);
        *p = '\0';
        s[i]->data = p - s[i]->len;
        p++;
    }
}


static ngx_int_t
ngx_http_telehealth_bearer(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char    *p, *last;
    ngx_str_t *h;

    if (r->headers_in.authorization == NULL) {
        return NGX_DECLINED;
    }

    h = &r->headers_in.authorization->value;

    if (h->len < sizeof("Bearer ") - 1
        || ngx_strncasecmp(h->data, (u_char *) "Bearer ", sizeof("Bearer ") - 1)
               != 0)
    {
        return NGX_DECLINED;
    }

    p = h->data + sizeof("Bearer ") - 1;
    last = h->data + h->len;

    while (p < last && *p == ' ') {
        p++;
    }

    while (last > p && last[-1] == ' ') {
        last--;
    }

    if (p == last) {
        return NGX_DECLINED;
    }

    token->len = last - p;
    token->data = ngx_pnalloc(r->pool, token->len + 1);
    if (token->data == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn(token->data, p, token->len + 1);

    return NGX_OK;
}


static ngx_int_t
ngx_http_telehealth_claim(ngx_pool_t *pool, json_t *claims, const char *name,
    ngx_str_t *value, ngx_uint_t required)
{
    json_t *v;

    v = json_object_get(claims, name);

    if (v == NULL && !required) {
        ngx_str_set(value, "");
        return NGX_OK;
    }

    if (!json_is_string(v)) {
        return NGX_DECLINED;
    }

    value->len = json_string_length(v);
    value->data = ngx_pnalloc(pool, value->len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, json_string_value(v), value->len);
    value->data[value->len] = '\0';

    return NGX_OK;
}


ngx_int_t
ngx_http_telehealth_caller(ngx_http_request_t *r, json_t *claims,
    ngx_http_telehealth_caller_t *caller)
{
    json_t   *exp;
    ngx_str_t typ;

    if (ngx_http_telehealth_claim(r->pool, claims, "sub", &caller->id, 1)
        || ngx_http_telehealth_claim(r->pool, claims, "org", &caller->org, 1)
        || ngx_http_telehealth_claim(r->pool, claims, "typ", &typ, 1)
        || ngx_http_telehealth_claim(r->pool, claims, "jti", &caller->jti, 1)
        || ngx_http_telehealth_claim(r->pool, claims, "role", &caller->role, 0)
        || ngx_http_telehealth_claim(r->pool, claims, "name", &caller->name, 0)
        || ngx_http_telehealth_claim(r->pool, claims, "email", &caller->email,
            0))
    {
        return NGX_DECLINED;
    }

    if (!ngx_http_telehealth_is_uuid((char *) caller->id.data, caller->id.len)
        || !ngx_http_telehealth_is_uuid((char *) caller->org.data,
            caller->org.len))
    {
        return NGX_DECLINED;
    }

    if (typ.len == 5 && ngx_strncmp(typ.data, "staff", 5) == 0) {
        caller->staff = 1;

    } else if (typ.len == 5 && ngx_strncmp(typ.data, "guest", 5) == 0) {
        caller->guest = 1;

    } else if (typ.len != 7 || ngx_strncmp(typ.data, "patient", 7) != 0) {
        return NGX_DECLINED;
    }

    exp = json_object_get(claims, "exp");
    caller->exp = (time_t) json_integer_value(exp);
    caller->iat = (time_t) json_integer_value(json_object_get(claims, "iat"));

    return NGX_OK;
}


const char *
ngx_http_telehealth_caller_type(ngx_http_telehealth_caller_t *caller)
{
    return caller->staff ? "staff" : caller->guest ? "guest" : "patient";
}


/* POST /auth/login */

void
ngx_http_telehealth_auth_login(ngx_http_request_t *r)
{
    json_t                       *email, *password, *org;
    ngx_int_t                     rc;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_person_t *person;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    email = json_object_get(ctx->body, "email");
    password = json_object_get(ctx->body, "password");
    org = json_object_get(ctx->body, "organisation");

    if (org != NULL && !json_is_null(org)
        && (!json_is_string(org)
            || !ngx_http_telehealth_is_uuid(json_string_value(org),
                json_string_length(org))))
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
            "\"organisation\" must be an "
            "organisation's id.");
        return;
    }

    if (!json_is_string(email) || !json_is_string(password)
        || json_string_length(email) == 0 || json_string_length(password) == 0)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
            "An e-mail address and a password are "
            "required.");
        return;
    }

    if (json_string_length(email) > 320 || json_string_length(password) > 1024)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_CREDENTIALS,
            NULL);
        return;
    }

    person = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_person_t));
    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);

    if (person == NULL || ctx->pg == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* logins.email is stored lower-case */
    person->email.len = json_string_length(email);
    person->email.data = ngx_pnalloc(r->pool, person->email.len + 1);
    if (person->email.data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_strlow(person->email.data, (u_char *) json_string_value(email),
        person->email.len);
    person->email.data[person->email.len] = '\0';

    if (json_is_string(org)) {
        person->org_asked = (char *) json_string_value(org);
    }

    ctx->data = person;

    /* the same key whether the account exists or not */
    rc = ngx_http_telehealth_throttle_check(r, TH_THROTTLE_LOGIN_ACCOUNT,
        &person->email, TH_THROTTLE_LOGIN_ADDR, NGX_HTTP_UNAUTHORIZED,
        NGX_HTTP_OK, ngx_http_telehealth_login_checked);
    if (rc == NGX_ERROR) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);

    } else if (rc != NGX_OK) {
        ngx_http_telehealth_login_audit(r, NGX_HTTP_SERVICE_UNAVAILABLE);
    }
}


static void
ngx_http_telehealth_login_checked(ngx_http_request_t *r, ngx_int_t rc)
{
    const char                  **params;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_person_t *person;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    person = ctx->data;

    if (rc == NGX_BUSY) {
        ngx_http_telehealth_login_audit(r, NGX_HTTP_TOO_MANY_REQUESTS);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_telehealth_login_audit(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    params = ngx_palloc(r->pool, 2 * sizeof(char *));
    if (params == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    params[0] = (char *) person->email.data;
    params[1] = person->org_asked;

    ctx->pg->handler = ngx_http_telehealth_login_found;
    ctx->pg->data = r;

    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_login_sql, 2,
            params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


/*
 * Every login attempt leaves an audit row (no e-mail, no password): the
 * account's organisation and id when it exists, the client address and
 * the status.  The answer leaves once the row is written; an accepted
 * login whose row cannot be written is answered 503.
 */

static void
ngx_http_telehealth_login_audit(ngx_http_request_t *r, ngx_uint_t status)
{
    u_char                       *p;
    const char                  **params;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_person_t *person;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    person = ctx->data;
    person->status = status;

    params = ngx_palloc(r->pool, 5 * sizeof(char *));
    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);

    if (params == NULL || p == NULL || ctx->pg == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    (void) ngx_sprintf(p, "%ui%Z", status);

    params[0] = person->found ? (char *) person->org.data : NULL;
    params[1] = person->found ? (char *) person->type.data : NULL;
    params[2] = person->found ? (char *) person->id.data : NULL;
    params[3] = ngx_http_telehealth_client_addr(r);
    params[4] = (char *) p;

    ctx->pg->handler = ngx_http_telehealth_login_audited;
    ctx->pg->data = r;

    if (ngx_http_telehealth_pg_query(ctx->pg,
            ngx_http_telehealth_login_audit_sql, 5, params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_login_audited(ngx_http_telehealth_pg_req_t *pg)
{
    json_t                       *answer;
    ngx_http_request_t           *r;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_person_t *person;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    person = ctx->data;
    answer = person->answer;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
            "telehealth: login audit row not written");

        if (person->status == NGX_HTTP_OK) {
            ngx_http_telehealth_fail_pg(r, pg);
            return;
        }
    }

    switch (person->status) {

    case NGX_HTTP_OK:
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json(r, NGX_HTTP_OK, json_incref(answer)));
        return;

    case NGX_HTTP_TOO_MANY_REQUESTS:
        ngx_http_telehealth_throttle_refuse(r);
        return;

    case NGX_HTTP_UNAUTHORIZED:
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_CREDENTIALS,
            NULL);
        return;

    default:
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }
}


static void
ngx_http_telehealth_login_found(ngx_http_telehealth_pg_req_t *pg)
{
    int                           i, n;
    json_t                       *password;
    ngx_str_t                     pwd, *hash;
    ngx_http_telehealth_person_t *other;
    ngx_http_request_t           *r;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_person_t *person;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    person = ctx->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    hash = NULL;
    n = PQntuples(pg->result);

    if (n >= 1) {
        if (ngx_http_telehealth_person(r->pool, pg->result, 0, person)
            != NGX_OK)
        {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        person->found = 1;
        hash = &person->hash;
    }

    if (n > 1) {
        person->others = ngx_array_create(r->pool, n - 1,
            sizeof(ngx_http_telehealth_person_t));
        if (person->others == NULL) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        for (i = 1; i < n; i++) {
            other = ngx_array_push(person->others);
            if (other == NULL) {
                ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            ngx_memzero(other, sizeof(ngx_http_telehealth_person_t));

            if (ngx_http_telehealth_person(r->pool, pg->result, i, other)
                != NGX_OK)
            {
                ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        }
    }

    password = json_object_get(ctx->body, "password");
    pwd.data = (u_char *) json_string_value(password);
    pwd.len = json_string_length(password);

    switch (ngx_http_telehealth_password_verify(r, hash, &pwd,
        ngx_http_telehealth_login_verified))
    {
    case NGX_OK:
        return;

    case NGX_DECLINED:
        /* shed: too many checks pending */
        ngx_http_telehealth_login_audit(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;

    default:
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
}


static void
ngx_http_telehealth_login_verified(ngx_http_request_t *r, ngx_int_t rc)
{
    char                            *token;
    json_t                          *claims, *user, *answer;
    time_t                           now;
    json_error_t                     err;
    ngx_http_telehealth_ctx_t       *ctx;
    ngx_http_telehealth_person_t    *person;
    ngx_http_telehealth_main_conf_t *mcf;
    char                             jti[TH_TOKEN_ID_LEN + 1];

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    person = ctx->data;
    mcf = ctx->mcf;

    if (rc != NGX_OK && person->others != NULL
        && person->next < person->others->nelts)
    {
        ngx_http_telehealth_login_next(r, person);
        return;
    }

    if (rc != NGX_OK || !person->active) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: login refused%s",
            (rc == NGX_OK) ? " (deactivated account)" : "");
        ngx_http_telehealth_login_audit(r, NGX_HTTP_UNAUTHORIZED);
        return;
    }

    if (th_token_new_id(jti, sizeof(jti)) != 0) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    now = ngx_time();

    claims = json_pack_ex(&err, 0,
        "{s:s, s:s, s:s%, s:s%, s:s%, s:s%, s:s, s:I, s:I}", "iss", TH_ISSUER,
        "aud", TH_AUD_API, "sub", person->id.data, person->id.len, "typ",
        person->type.data, person->type.len, "org", person->org.data,
        person->org.len, "name", person->name.data, person->name.len, "jti",
        jti, "iat", (json_int_t) now, "exp",
        (json_int_t) (now + mcf->access_token_ttl));

    if (claims != NULL && person->role.len) {
        json_object_set_new(claims, "role",
            json_stringn((char *) person->role.data, person->role.len));
    }

    /* GET /me answers from the claims */
    if (claims != NULL && person->email.data != NULL) {
        json_object_set_new(claims, "email",
            json_stringn((char *) person->email.data, person->email.len));
    }

    if (claims == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
            "telehealth: cannot build token claims: %s", err.text);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    token = th_token_sign(mcf->keyset, claims);
    json_decref(claims);

    if (token == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
            "telehealth: cannot sign an access token");
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    user = ngx_http_telehealth_person_json(person);

    answer = json_pack("{s:s, s:s, s:I, s:o}", "access_token", token,
        "token_type", "Bearer", "expires_in",
        (json_int_t) mcf->access_token_ttl, "user", user);
    free(token);

    /* freed with the request: it may end while the audit row is written */
    if (ngx_http_telehealth_json_track(r->pool, answer) == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    person->answer = answer;
    ngx_http_telehealth_login_audit(r, NGX_HTTP_OK);
}


/*
 * The password did not match the account of the address in one
 * organisation: the next organisation's account is tried, one argon2
 * verification after the other, on the same terms as the first.
 */

static void
ngx_http_telehealth_login_next(ngx_http_request_t *r,
    ngx_http_telehealth_person_t                  *person)
{
    json_t                       *password;
    ngx_str_t                     pwd;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_person_t *other;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    other =
        (ngx_http_telehealth_person_t *) person->others->elts + person->next++;

    person->hash = other->hash;
    person->id = other->id;
    person->type = other->type;
    person->org = other->org;
    person->role = other->role;
    person->name = other->name;
    person->email = other->email;
    person->active = other->active;

    password = json_object_get(ctx->body, "password");
    pwd.data = (u_char *) json_string_value(password);
    pwd.len = json_string_length(password);

    switch (ngx_http_telehealth_password_verify(r, &person->hash, &pwd,
        ngx_http_telehealth_login_verified))
    {
    case NGX_OK:
        return;

    case NGX_DECLINED:
        ngx_http_telehealth_login_audit(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;

    default:
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
}


static ngx_int_t
ngx_http_telehealth_person(ngx_pool_t *pool, PGresult *res, int row,
    ngx_http_telehealth_person_t *person)
{
    ngx_str_t active;

    if (PQnfields(res) != NGX_HTTP_TELEHEALTH_COLS) {
        return NGX_ERROR;
    }

    if (ngx_http_telehealth_pg_value(pool, res, row,
            NGX_HTTP_TELEHEALTH_COL_HASH, &person->hash)
        || ngx_http_telehealth_pg_value(pool, res, row,
            NGX_HTTP_TELEHEALTH_COL_ID, &person->id)
        || ngx_http_telehealth_pg_value(pool, res, row,
            NGX_HTTP_TELEHEALTH_COL_TYPE, &person->type)
        || ngx_http_telehealth_pg_value(pool, res, row,
            NGX_HTTP_TELEHEALTH_COL_ORG, &person->org)
        || ngx_http_telehealth_pg_value(pool, res, row,
            NGX_HTTP_TELEHEALTH_COL_ROLE, &person->role)
        || ngx_http_telehealth_pg_value(pool, res, row,
            NGX_HTTP_TELEHEALTH_COL_NAME, &person->name)
        || ngx_http_telehealth_pg_value(pool, res, row,
            NGX_HTTP_TELEHEALTH_COL_EMAIL, &person->email)
        || ngx_http_telehealth_pg_value(pool, res, row,
            NGX_HTTP_TELEHEALTH_COL_ACTIVE, &active))
    {
        return NGX_ERROR;
    }

    person->active = (active.len == 1 && active.data[0] == 't');

    return NGX_OK;
}


static json_t *
ngx_http_telehealth_str_json(ngx_str_t *s)
{
    if (s->data == NULL) {
        return json_null();
    }

    return json_stringn((char *) s->data, s->len);
}


/* the "user" of a login answer and the body of GET /me */

static json_t *
ngx_http_telehealth_person_json(ngx_http_telehealth_person_t *person)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "id",
        ngx_http_telehealth_str_json(&person->id), "type",
        ngx_http_telehealth_str_json(&person->type), "org_id",
        ngx_http_telehealth_str_json(&person->org), "role",
        ngx_http_telehealth_str_json(&person->role), "display_name",
        ngx_http_telehealth_str_json(&person->name), "email",
        ngx_http_telehealth_str_json(&person->email));
}


/* POST /auth/logout: common/lua/revoke_token.lua */

void
ngx_http_telehealth_auth_logout(ngx_http_request_t *r)
{
    char                      *key, *set;
    u_char                    *p, *last;
    time_t                     left;
    ngx_uint_t                 i;
    const char                *argv[10];
    size_t                     argvlen[10];
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_REVOKED,
        (char *) ctx->caller.jti.data);
    set = ngx_http_telehealth_redis_key(r->pool, TH_KEY_REVOCATIONS, "");
    p = ngx_pnalloc(r->pool, 3 * (NGX_TIME_T_LEN + 1));

    if (key == NULL || set == NULL || p == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* a revocation only needs to outlive the token */
    left = ctx->caller.exp - ngx_time();
    if (left < 1) {
        left = 1;
    }

    argv[0] = "EVAL";
    argv[1] = th_lua_revoke_token;
    argv[2] = "2";
    argv[3] = key;
    argv[4] = set;
    argv[5] = (char *) p;
    last = ngx_sprintf(p, "%T%Z", left);
    argv[6] = (char *) last;
    last = ngx_sprintf(last, "%T%Z", ngx_time() + left);
    argv[7] = (char *) last;
    (void) ngx_sprintf(last, "%T%Z", ngx_time());
    argv[8] = set; /* the channel of the same name */
    argv[9] = (char *) ctx->caller.jti.data;

    for (i = 0; i < 10; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_logout_done, r, 10, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_logout_done(void *data, redisReply *reply)
{
    time_t                     left;
    ngx_http_request_t        *r = data;
    ngx_http_telehealth_ctx_t *ctx;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    /* at once on this node; the others from the revocations channel */
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    left = ctx->caller.exp - ngx_time();
    ngx_http_telehealth_revocations_token(&ctx->caller.jti,
        ngx_time() + ngx_max(left, 1));

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_status(r, NGX_HTTP_NO_CONTENT));
}


/* GET /me */

/*
 * The body of GET /me from the claims, written here (no JSON library): as
 * ngx_http_telehealth_person_json() writes it, the strings escaped.
 */

static ngx_int_t
ngx_http_telehealth_me_claims(ngx_http_request_t *r,
    ngx_http_telehealth_caller_t                 *caller)
{
    u_char    *body, *p;
    size_t     len;
    ngx_uint_t i;
    ngx_str_t *v[4];

    v[0] = &caller->id;
    v[1] = &caller->org;
    v[2] = &caller->name;
    v[3] = &caller->email;

    len = sizeof("{\"id\":\"\",\"type\":\"patient\",\"org_id\":\"\","
                 "\"role\":null,\"display_name\":\"\",\"email\":\"\"}")
          + caller->role.len + 2;

    for (i = 0; i < 4; i++) {
        len += v[i]->len + ngx_escape_json(NULL, v[i]->data, v[i]->len);
    }

    if (caller->staff) {
        len += ngx_escape_json(NULL, caller->role.data, caller->role.len);
    }

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body, "{\"id\":\"", sizeof("{\"id\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, caller->id.data, caller->id.len);
    p = caller->staff
            ? ngx_cpymem(p, "\",\"type\":\"staff\",\"org_id\":\"",
                  sizeof("\",\"type\":\"staff\",\"org_id\":\"") - 1)
            : ngx_cpymem(p, "\",\"type\":\"patient\",\"org_id\":\"",
                  sizeof("\",\"type\":\"patient\",\"org_id\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, caller->org.data, caller->org.len);

    if (caller->staff) {
        p = ngx_cpymem(p, "\",\"role\":\"", sizeof("\",\"role\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, caller->role.data, caller->role.len);
        p = ngx_cpymem(p, "\",\"display_name\":\"",
            sizeof("\",\"display_name\":\"") - 1);

    } else {
        p = ngx_cpymem(p, "\",\"role\":null,\"display_name\":\"",
            sizeof("\",\"role\":null,\"display_name\":\"") - 1);
    }

    p = (u_char *) ngx_escape_json(p, caller->name.data, caller->name.len);
    p = ngx_cpymem(p, "\",\"email\":\"", sizeof("\",\"email\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, caller->email.data, caller->email.len);
    *p++ = '"';
    *p++ = '}';

    return ngx_http_telehealth_send_json_text(r, NGX_HTTP_OK, body, p - body);
}


void
ngx_http_telehealth_auth_me(ngx_http_request_t *r)
{
    const char               **params;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    /*
     * Our own tokens carry everything GET /me answers, as of the login; a
     * person cut off since is refused by the revocations already.  Tokens
     * of an identity provider (and ours from before the "email" claim):
     * the account from PostgreSQL.
     */
    if (ctx->caller.own && ctx->caller.email.len) {
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_me_claims(r, &ctx->caller));
        return;
    }

    params = ngx_palloc(r->pool, 3 * sizeof(char *));
    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);

    if (params == NULL || ctx->pg == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    params[0] = (char *) ctx->caller.id.data;
    params[1] = (char *) ctx->caller.org.data;
    params[2] = ctx->caller.staff ? "staff" : "patient";

    ctx->pg->handler = ngx_http_telehealth_me_found;
    ctx->pg->data = r;

    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_me_sql, 3,
            params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_me_found(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_request_t          *r;
    ngx_http_telehealth_person_t person;

    r = pg->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    ngx_memzero(&person, sizeof(ngx_http_telehealth_person_t));

    if (PQntuples(pg->result) != 1) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;
    }

    if (ngx_http_telehealth_person(r->pool, pg->result, 0, &person) != NGX_OK) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!person.active) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED,
            "This account is deactivated.");
        return;
    }

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_OK,
            ngx_http_telehealth_person_json(&person)));
}
