/*
 * Routes answered by one PostgreSQL statement: th_api(op, request).
 *
 * The request goes to PostgreSQL as one JSON document: the caller from the
 * verified access token, the client address, the path's ids, the query
 * string, the body and If-Match.  PostgreSQL answers with a status, a JSON
 * body (a problem name and detail for errors), an ETag and a Location.
 * Access checks, the change and its audit row are one transaction there,
 * so no route can forget the audit or commit half of its work.
 *
 * A "password" in the body of the operations that create accounts is
 * hashed with argon2id on the thread pool first; only the hash leaves the
 * worker.
 *
 * A route without an access token (a link's token is the credential)
 * runs th_public(op, request) instead, with no caller; the body's "token"
 * reaches PostgreSQL only as its SHA-256, "presented_hash".
 *
 * What happens after a 2xx answer (Redis, the room's node, a session's
 * start) is the route's "then" step, named where the route is declared
 * (ngx_http_telehealth_api.c); this file only answers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>

#include "ngx_http_telehealth_records.h"
#include "ngx_http_telehealth_password.h"
#include "ngx_http_telehealth_revoke.h"
#include "ngx_http_telehealth_auth.h"


#define NGX_HTTP_TELEHEALTH_MAX_ARGS     16
#define NGX_HTTP_TELEHEALTH_PASSWORD_MIN 8
#define NGX_HTTP_TELEHEALTH_PASSWORD_MAX 1024
#define NGX_HTTP_TELEHEALTH_INVITE_BYTES 32
#define NGX_HTTP_TELEHEALTH_INVITE_BUF   45 /* base64url of 32, NUL */
#define NGX_HTTP_TELEHEALTH_JOIN_PAGE    "/join#t="


typedef struct {
    json_t                       *req;
    ngx_str_t                     hash;
    char                         *text;
    const char                   *params[2];
    char                         *invite; /* a new link's token */
    ngx_str_t                     url;    /* and the link */
    ngx_http_telehealth_pg_req_t *pg;     /* the answer, while the
                                                  person is cut off */
    unsigned                      revoked : 1;
} ngx_http_telehealth_records_t;


static ngx_int_t ngx_http_telehealth_records_query(ngx_http_request_t *r,
    json_t                                                            *query);
static ngx_int_t ngx_http_telehealth_records_password(ngx_http_request_t *r,
    ngx_http_telehealth_records_t                                        *rec);
static void ngx_http_telehealth_records_hashed(ngx_http_request_t *r,
    ngx_int_t                                                      rc);
static void ngx_http_telehealth_records_send(ngx_http_request_t *r);
static ngx_uint_t ngx_http_telehealth_records_revokes(ngx_http_telehealth_ctx_t
                                                          *ctx,
    ngx_http_telehealth_records_t                         *rec);
static void ngx_http_telehealth_records_resume(ngx_http_request_t *r);
static void ngx_http_telehealth_records_done(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_records_problem(ngx_http_request_t *r,
    ngx_uint_t status, const char *body);
static json_t *ngx_http_telehealth_records_str(ngx_str_t *s);
static ngx_int_t ngx_http_telehealth_records_invite(ngx_http_request_t *r,
    ngx_http_telehealth_records_t                                      *rec);
static ngx_int_t ngx_http_telehealth_records_invite_url(ngx_http_request_t *r,
    ngx_http_telehealth_records_t *rec);
static ngx_int_t ngx_http_telehealth_records_presented(ngx_http_request_t *r,
    ngx_http_telehealth_records_t                                         *rec);


static const char ngx_http_telehealth_records_sql[] =
    "SELECT status, body::text, etag, location FROM th_api($1, $2::jsonb)";

static const char ngx_http_telehealth_public_sql[] =
    "SELECT status, body::text, etag, location FROM th_public($1, $2::jsonb)";

/* operations that hand out a new invite link */
static const char *ngx_http_telehealth_invite_ops[] = { "invite_create",
    "invite_resend", "visit_invite", NULL };

/* operations whose body may carry a new "password" */
static const char *ngx_http_telehealth_password_ops[] = { "staff_create",
    "staff_update", "patient_create", NULL };


void
ngx_http_telehealth_records_handler(ngx_http_request_t *r)
{
    json_t                        *req, *caller, *query;
    ngx_int_t                      rc;
    ngx_table_elt_t               *h;
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_records_t *rec;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    rec = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_records_t));
    if (rec == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = rec;

    req = ngx_http_telehealth_json_track(r->pool, json_object());
    caller = (ctx->caller.id.len == 0)
                 ? json_null()
                 : json_pack("{s:s, s:s, s:s, s:s}", "id",
                       (char *) ctx->caller.id.data, "org",
                       (char *) ctx->caller.org.data, "type",
                       ngx_http_telehealth_caller_type(&ctx->caller), "name",
                       (char *) ctx->caller.name.data);
    query = json_object();

    if (req == NULL || caller == NULL || query == NULL) {
        json_decref(caller);
        json_decref(query);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rec->req = req;

    if (json_object_set_new(req, "caller", caller) != 0
        || json_object_set_new(req, "query", query) != 0
        || json_object_set_new(req, "addr",
               ngx_http_telehealth_records_str(&r->connection->addr_text))
               != 0
        || json_object_set_new(req, "id",
               ngx_http_telehealth_records_str(&ctx->id))
               != 0
        || json_object_set_new(req, "id2",
               ngx_http_telehealth_records_str(&ctx->id2))
               != 0)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->body != NULL && json_object_set(req, "body", ctx->body) != 0) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* links in messages */
    if (json_object_set_new(req, "public_url",
            ngx_http_telehealth_records_str(&ctx->mcf->public_url))
            != 0
        || ngx_http_telehealth_records_presented(r, rec) != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    h = r->headers_in.if_match;

    if (h != NULL
        && json_object_set_new(req, "if_match",
               ngx_http_telehealth_records_str(&h->value))
               != 0)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
            "The If-Match header is not valid.");
        return;
    }

    rc = ngx_http_telehealth_records_query(r, query);

    if (rc == NGX_DECLINED) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
            "The query string is not valid.");
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_telehealth_records_invite(r, rec) != NGX_OK) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_telehealth_records_password(r, rec);

    if (rc == NGX_AGAIN || rc == NGX_DONE) {
        return;
    }

    ngx_http_telehealth_records_send(r);
}


/* ?a=1&b=x%20y -> {"a": "1", "b": "x y"}; NGX_DECLINED: not acceptable */

static ngx_int_t
ngx_http_telehealth_records_query(ngx_http_request_t *r, json_t *query)
{
    u_char    *p, *end, *amp, *eq, *s, *d, *key, *value;
    json_t    *v;
    ngx_uint_t n, i;
    u_char    *part[2], *part_end[2], *out[2];

    p = r->args.data;
    end = p + r->args.len;
    n = 0;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        if (amp == p) {
            p++;
            continue;
        }

        if (++n > NGX_HTTP_TELEHEALTH_MAX_ARGS) {
            return NGX_DECLINED;
        }

        eq = ngx_strlchr(p, amp, '=');

        part[0] = p;
        part_end[0] = (eq != NULL) ? eq : amp;
        part[1] = (eq != NULL) ? eq + 1 : amp;
        part_end[1] = amp;

        for (i = 0; i < 2; i++) {
            out[i] = ngx_pnalloc(r->pool, part_end[i] - part[i] + 1);
            if (out[i] == NULL) {
                return NGX_ERROR;
            }

            /* form encoding: "+" is a space, "%2B" a plus */
            for (s = part[i], d = out[i]; s < part_end[i]; s++, d++) {
                *d = (*s == '+') ? ' ' : *s;
            }

            s = out[i];
            d = out[i];
            ngx_unescape_uri(&d, &s, part_end[i] - part[i], 0);
            *d = '\0';

            if ((size_t) (d - out[i]) != ngx_strlen(out[i])) {
                return NGX_DECLINED; /* a %00 */
            }
        }

        key = out[0];
        value = out[1];

        v = json_string((char *) value);
        if (v == NULL || json_object_set_new(query, (char *) key, v) != 0) {
            return NGX_DECLINED; /* not UTF-8 */
        }

        p = amp + 1;
    }

    return NGX_OK;
}


/*
 * NGX_OK: nothing to hash.  NGX_AGAIN: hashing, the send follows.
 * NGX_DONE: the request has been answered.
 */

static ngx_int_t
ngx_http_telehealth_records_password(ngx_http_request_t *r,
    ngx_http_telehealth_records_t                       *rec)
{
    json_t                    *password;
    ngx_str_t                  pwd;
    ngx_int_t                  rc;
    const char               **op;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (ctx->body == NULL) {
        return NGX_OK;
    }

    password = json_object_get(ctx->body, "password");
    if (password == NULL) {
        return NGX_OK;
    }

    for (op = ngx_http_telehealth_password_ops; *op; op++) {
        if (ngx_strcmp(*op, ctx->op) == 0) {
            break;
        }
    }

    if (*op == NULL) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_VALIDATION,
            "\"password\" cannot be set here.");
        return NGX_DONE;
    }

    if (!json_is_string(password)
        || json_string_length(password) < NGX_HTTP_TELEHEALTH_PASSWORD_MIN
        || json_string_length(password) > NGX_HTTP_TELEHEALTH_PASSWORD_MAX)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_VALIDATION,
            "\"password\" must have at least 8 "
            "characters.");
        return NGX_DONE;
    }

    pwd.data = (u_char *) json_string_value(password);
    pwd.len = json_string_length(password);

    rc = ngx_http_telehealth_password_hash(r, &pwd, &rec->hash,
        ngx_http_telehealth_records_hashed);

    /* the task holds its own copy; the plain text never reaches SQL */
    OPENSSL_cleanse(pwd.data, pwd.len);
    json_object_del(ctx->body, "password");

    if (rc == NGX_OK) {
        return NGX_AGAIN;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);

    } else {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    return NGX_DONE;
}


static void
ngx_http_telehealth_records_hashed(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_records_t *rec;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    rec = ctx->data;

    if (rc != NGX_OK
        || json_object_set_new(rec->req, "password_hash",
               ngx_http_telehealth_records_str(&rec->hash))
               != 0)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_records_send(r);
}


static void
ngx_http_telehealth_records_send(ngx_http_request_t *r)
{
    char                          *text;
    size_t                         len;
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_records_t *rec;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    rec = ctx->data;

    text = json_dumps(rec->req, JSON_COMPACT);
    if (text == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = ngx_strlen(text);

    rec->text = ngx_pnalloc(r->pool, len + 1);
    if (rec->text == NULL) {
        free(text);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(rec->text, text, len + 1);
    free(text);

    rec->params[0] = ctx->op;
    rec->params[1] = rec->text;

    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (ctx->pg == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->pg->handler = ngx_http_telehealth_records_done;
    ctx->pg->data = r;

    if (ngx_http_telehealth_pg_query(ctx->pg,
            ctx->caller.id.len ? ngx_http_telehealth_records_sql
                               : ngx_http_telehealth_public_sql,
            2, rec->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_records_done(ngx_http_telehealth_pg_req_t *pg)
{
    json_t                        *body;
    ngx_int_t                      status;
    ngx_str_t                      etag, location;
    PGresult                      *res;
    ngx_http_request_t            *r;
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_records_t *rec;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    res = pg->result;

    if (PQntuples(res) != 1 || PQnfields(res) != 4 || PQgetisnull(res, 0, 0)) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));

    if (status < NGX_HTTP_OK || status > 599) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (status >= NGX_HTTP_BAD_REQUEST) {
        ngx_http_telehealth_records_problem(r, status, PQgetvalue(res, 0, 1));
        return;
    }

    /* deactivated, or a new password: their tokens and rooms go first */
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    rec = ctx->data;

    if (!rec->revoked && ngx_http_telehealth_records_revokes(ctx, rec)) {
        rec->revoked = 1;
        rec->pg = pg;
        ngx_http_telehealth_revoke_person(r, "staff", (char *) ctx->id.data,
            ngx_http_telehealth_records_resume);
        return;
    }

    if (ngx_http_telehealth_pg_value(r->pool, res, 0, 2, &etag) != NGX_OK
        || ngx_http_telehealth_pg_value(r->pool, res, 0, 3, &location)
               != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (etag.len
        && ngx_http_telehealth_add_header(r, "ETag", etag.data, etag.len)
               != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (location.len
        && ngx_http_telehealth_set_location(r, location.data, location.len)
               != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (status == NGX_HTTP_NO_CONTENT) {
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_status(r, NGX_HTTP_NO_CONTENT));
        return;
    }

    rec = ctx->data;

    /* nothing to add or do: the answer as PostgreSQL wrote it (lists) */
    if (ctx->then == NULL && rec->invite == NULL && !PQgetisnull(res, 0, 1)) {
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json_text(r, status,
                (u_char *) PQgetvalue(res, 0, 1), PQgetlength(res, 0, 1)));
        return;
    }

    body = json_loads(PQgetvalue(res, 0, 1), 0, NULL);

    /*
     * a new invite link: its token is answered once, never stored; "url"
     * is absent while the invite is held back
     */
    if (status == NGX_HTTP_CREATED && body != NULL
        && json_object_get(body, "url") != NULL)
    {
        if (rec->invite != NULL
            && (json_object_set_new(body, "token", json_string(rec->invite))
                    != 0
                || json_object_set_new(body, "url",
                       json_stringn((char *) rec->url.data, rec->url.len))
                       != 0))
        {
            json_decref(body);
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    /* the route's own next step (its declaration names it) */
    if (status < NGX_HTTP_SPECIAL_RESPONSE && body != NULL && ctx->then != NULL)
    {
        ctx->then(r, status, body);
        json_decref(body);
        return;
    }

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, status, body));
}


/* body: {"problem": "not-found", "detail": "No such patient."} */

/*
 * A staff member deactivated (DELETE /staff/{id}, PATCH "active": false)
 * or given a new password (PATCH "password") loses every token at once.
 */

static ngx_uint_t
ngx_http_telehealth_records_revokes(ngx_http_telehealth_ctx_t *ctx,
    ngx_http_telehealth_records_t                             *rec)
{
    if (ctx->op == NULL || ctx->id.len == 0) {
        return 0;
    }

    if (ngx_strcmp(ctx->op, "staff_deactivate") == 0) {
        return 1;
    }

    if (ngx_strcmp(ctx->op, "staff_update") == 0) {
        return json_is_false(json_object_get(ctx->body, "active"))
               || json_object_get(rec->req, "password_hash") != NULL;
    }

    return 0;
}


static void
ngx_http_telehealth_records_resume(ngx_http_request_t *r)
{
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_records_t *rec;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    rec = ctx->data;

    ngx_http_telehealth_records_done(rec->pg);
}


static void
ngx_http_telehealth_records_problem(ngx_http_request_t *r, ngx_uint_t status,
    const char *body)
{
    json_t                       *json, *name, *detail;
    ngx_http_telehealth_problem_e problem;

    json = ngx_http_telehealth_json_track(r->pool, json_loads(body, 0, NULL));

    name = json_object_get(json, "problem");
    detail = json_object_get(json, "detail");

    if (!json_is_string(name)) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    problem = ngx_http_telehealth_problem_named(json_string_value(name));

    if (problem == NGX_HTTP_TELEHEALTH_INTERNAL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
            "telehealth: th_api() answered %ui %s", status,
            json_string_value(name));
    }

    ngx_http_telehealth_fail(r, problem,
        json_is_string(detail) ? json_string_value(detail) : NULL);
}


/* a JSON string of s; null for an empty one or one that is not UTF-8 */

static json_t *
ngx_http_telehealth_records_str(ngx_str_t *s)
{
    json_t *v;

    if (s->len == 0) {
        return json_null();
    }

    v = json_stringn((char *) s->data, s->len);

    return (v != NULL) ? v : json_null();
}


/*
 * An invite link's token: 32 random bytes, base64url.  PostgreSQL gets
 * its SHA-256 to store, and the link and the public URL only to put into
 * the message that carries them; the token itself stays in the pool for
 * the answer.
 */

static ngx_int_t
ngx_http_telehealth_records_invite(ngx_http_request_t *r,
    ngx_http_telehealth_records_t                     *rec)
{
    char                       hash[65];
    ngx_uint_t                 i;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    for (i = 0; ngx_http_telehealth_invite_ops[i]; i++) {
        if (ngx_strcmp(ctx->op, ngx_http_telehealth_invite_ops[i]) == 0) {
            break;
        }
    }

    if (ngx_http_telehealth_invite_ops[i] == NULL) {
        return NGX_OK;
    }

    rec->invite = ngx_pnalloc(r->pool, NGX_HTTP_TELEHEALTH_INVITE_BUF);
    if (rec->invite == NULL) {
        return NGX_ERROR;
    }

    if (th_random_b64url(rec->invite, NGX_HTTP_TELEHEALTH_INVITE_BUF,
            NGX_HTTP_TELEHEALTH_INVITE_BYTES)
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
            "telehealth: no random bytes for an invite link");
        return NGX_ERROR;
    }

    th_sha256_hex(rec->invite, ngx_strlen(rec->invite), hash);

    if (ngx_http_telehealth_records_invite_url(r, rec) != NGX_OK
        || json_object_set_new(rec->req, "token_hash", json_string(hash)) != 0
        || json_object_set_new(rec->req, "link",
               ngx_http_telehealth_records_str(&rec->url))
               != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* telehealth_public_url + "/join#t=" + token */

static ngx_int_t
ngx_http_telehealth_records_invite_url(ngx_http_request_t *r,
    ngx_http_telehealth_records_t                         *rec)
{
    u_char                    *p;
    size_t                     len;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    len = ctx->mcf->public_url.len + sizeof(NGX_HTTP_TELEHEALTH_JOIN_PAGE)
          + ngx_strlen(rec->invite);

    rec->url.data = ngx_pnalloc(r->pool, len);
    if (rec->url.data == NULL) {
        return NGX_ERROR;
    }

    p = rec->url.data;

    if (ctx->mcf->public_url.len) {
        p = ngx_cpymem(p, ctx->mcf->public_url.data, ctx->mcf->public_url.len);

        if (p[-1] == '/') {
            p--;
        }
    }

    p = ngx_cpymem(p, NGX_HTTP_TELEHEALTH_JOIN_PAGE,
        sizeof(NGX_HTTP_TELEHEALTH_JOIN_PAGE) - 1);
    p = ngx_cpymem(p, rec->invite, ngx_strlen(rec->invite));

    rec->url.len = p - rec->url.data;

    return NGX_OK;
}


/* without a caller: the body's "token" becomes "presented_hash" */

static ngx_int_t
ngx_http_telehealth_records_presented(ngx_http_request_t *r,
    ngx_http_telehealth_records_t                        *rec)
{
    char                       hash[65];
    json_t                    *token;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (ctx->caller.id.len || ctx->body == NULL) {
        return NGX_OK;
    }

    token = json_object_get(ctx->body, "token");

    if (!json_is_string(token)
        || json_string_length(token) > NGX_HTTP_TELEHEALTH_INVITE_BUF)
    {
        /* no hash: the link is not found */
        (void) json_object_del(ctx->body, "token");
        return NGX_OK;
    }

    th_sha256_hex(json_string_value(token), json_string_length(token), hash);

    if (json_object_set_new(rec->req, "presented_hash", json_string(hash)) != 0
        || json_object_del(ctx->body, "token") != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
