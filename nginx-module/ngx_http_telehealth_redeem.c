/*
 * Invite links: POST /invites/redeem turns a link's token (and, for a
 * group's registration, the guest's name) into a join credential.
 * PostgreSQL answers whether the invitee may open a scheduled session or
 * is a group's registrant; the credential is a join's
 * (ngx_http_telehealth_join.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_session.h"
#include "ngx_http_telehealth_session_shared.h"


/*
 * $1 the SHA-256 (hex) of an invite link's token, $2 client address, $3
 * the guest's name (a group's registration is the link and the name)
 */
static const char ngx_http_telehealth_redeem_sql[] =
    "SELECT status, body::text FROM th_invite_redeem_named($1, $2, $3)";

#define NGX_HTTP_TELEHEALTH_GUEST_NAME_MAX   100
#define NGX_HTTP_TELEHEALTH_INVITE_TOKEN_MAX 128


static void ngx_http_telehealth_redeem_open(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, json_t *open);
static void ngx_http_telehealth_redeem_done(ngx_http_telehealth_pg_req_t *pg);
static ngx_int_t ngx_http_telehealth_guest_name(json_t *name);
static ngx_int_t ngx_http_telehealth_json_strs(json_t *obj, ...);


/* POST /invites/redeem {token, display_name}: no access token */

void
ngx_http_telehealth_invite_redeem(ngx_http_request_t *r)
{
    json_t                     *token, *name;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_join_t *jn;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (ctx->body == NULL) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
            "A JSON body is required.");
        return;
    }

    token = json_object_get(ctx->body, "token");
    name = json_object_get(ctx->body, "display_name");

    if (!json_is_string(token) || json_string_length(token) == 0
        || json_string_length(token) > NGX_HTTP_TELEHEALTH_INVITE_TOKEN_MAX)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_VALIDATION,
            "\"token\" is required.");
        return;
    }

    if (ngx_http_telehealth_guest_name(name) != NGX_OK) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_VALIDATION,
            "Please enter your name (at most 100 "
            "characters).");
        return;
    }

    jn = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_join_t));
    if (jn == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = jn;

    jn->name.data = (u_char *) json_string_value(name);
    jn->name.len = json_string_length(name);

    th_sha256_hex(json_string_value(token), json_string_length(token),
        jn->hash);

    jn->redeem = 1;

    ngx_http_telehealth_redeem_query(r, jn);
}


void
ngx_http_telehealth_redeem_query(ngx_http_request_t *r,
    ngx_http_telehealth_join_t                      *jn)
{
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    jn->params[0] = jn->hash;
    jn->params[1] = ngx_http_telehealth_client_addr(r);
    jn->params[2] = (char *) jn->name.data;

    if (jn->params[1] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (ctx->pg == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->pg->handler = ngx_http_telehealth_redeem_done;
    ctx->pg->data = r;

    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_redeem_sql, 3,
            jn->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


/*
 * The invitee's link to a scheduled session that its invitee opens
 * (docs/lifecycle.md): the room opens as on the opener's first join, then
 * the link is redeemed again, into the open session.
 */

static void
ngx_http_telehealth_redeem_open(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, json_t *open)
{
    json_t                      *fields, *v;
    const char                  *created_by;
    ngx_http_telehealth_start_t *st;

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_start_t));
    if (st == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* its strings live as long as the answer, tracked by the request */
    if (ngx_http_telehealth_json_strs(open, "session_id", &jn->session,
            "org_id", &jn->org, "kind", &jn->kind, "invite_id", &jn->sub, NULL)
        != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    v = json_object_get(open, "patient_id");
    if (json_is_string(v)) {
        st->patient.data = (u_char *) json_string_value(v);
        st->patient.len = json_string_length(v);
    }

    created_by = json_string_value(json_object_get(open, "created_by"));
    fields = json_object_get(open, "room_fields");

    if (created_by == NULL || !json_is_array(fields)) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the parameters of ngx_http_telehealth_opened_sql: a guest opens */
    jn->params[0] = (char *) jn->sub.data;
    jn->params[1] = (char *) jn->org.data;
    jn->params[2] = "guest";
    jn->params[3] = (char *) jn->session.data;
    jn->params[4] = ngx_http_telehealth_client_addr(r);

    if (jn->params[4] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    st->session = jn->session;
    st->org = jn->org;
    st->kind = jn->kind;
    jn->open = st;
    jn->retried = 1;

    ngx_http_telehealth_room_open(r, st, created_by, fields,
        ngx_http_telehealth_join_locked);
}


/* 1 to 100 characters (UTF-8), not only spaces, no control characters */

static ngx_int_t
ngx_http_telehealth_guest_name(json_t *name)
{
    size_t      i, len, chars;
    ngx_uint_t  visible;
    const char *s;

    if (!json_is_string(name)) {
        return NGX_DECLINED;
    }

    s = json_string_value(name);
    len = json_string_length(name);
    chars = 0;
    visible = 0;

    for (i = 0; i < len; i++) {
        if ((u_char) s[i] < 0x20 || s[i] == 0x7f) {
            return NGX_DECLINED;
        }

        if (((u_char) s[i] & 0xc0) != 0x80) {
            chars++;
        }

        if (s[i] != ' ') {
            visible = 1;
        }
    }

    if (!visible || chars > NGX_HTTP_TELEHEALTH_GUEST_NAME_MAX) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_redeem_done(ngx_http_telehealth_pg_req_t *pg)
{
    json_t                     *body, *v;
    ngx_str_t                   id;
    ngx_int_t                   status;
    PGresult                   *res;
    ngx_http_request_t         *r;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_join_t *jn;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    res = pg->result;

    if (PQntuples(res) != 1 || PQnfields(res) != 2 || PQgetisnull(res, 0, 0)
        || PQgetisnull(res, 0, 1))
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));

    body = ngx_http_telehealth_json_track(r->pool,
        json_loads(PQgetvalue(res, 0, 1), 0, NULL));

    if (body == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    v = json_object_get(body, "open");

    if (status == NGX_HTTP_CONFLICT && json_is_object(v) && !jn->retried) {
        ngx_http_telehealth_redeem_open(r, jn, v);
        return;
    }

    /* registered for a group that has not started: no credential yet */
    if (status == NGX_HTTP_ACCEPTED) {
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json(r, status, json_incref(body)));
        return;
    }

    if (status != NGX_HTTP_OK) {
        v = json_object_get(body, "detail");

        ngx_http_telehealth_fail(r,
            ngx_http_telehealth_problem_named(
                json_string_value(json_object_get(body, "problem"))
                    ? json_string_value(json_object_get(body, "problem"))
                    : "internal"),
            json_is_string(v) ? json_string_value(v) : NULL);
        return;
    }

    if (ngx_http_telehealth_json_strs(body, "room", &jn->room, "kind",
            &jn->kind, "role", &jn->role, "session_id", &jn->session, "org_id",
            &jn->org, "invite_id", &jn->sub, NULL)
        != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    jn->preadmitted = json_is_true(json_object_get(body, "preadmitted"));

    /* a guest: "guest:<invite id>" */
    id = jn->sub;

    jn->sub.data = ngx_pnalloc(r->pool, sizeof("guest:") + jn->sub.len);
    if (jn->sub.data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    jn->sub.len =
        ngx_sprintf(jn->sub.data, "guest:%V%Z", &id) - jn->sub.data - 1;

    ngx_http_telehealth_join_check_room(r, jn);
}


/*
 * Points each ngx_str_t at the string member of obj named before it:
 * (obj, "field", &str, ..., NULL).  NGX_ERROR when one is not a string.
 */

static ngx_int_t
ngx_http_telehealth_json_strs(json_t *obj, ...)
{
    va_list     args;
    json_t     *v;
    ngx_str_t  *dst;
    const char *field;

    va_start(args, obj);

    while ((field = va_arg(args, const char *)) != NULL) {
        dst = va_arg(args, ngx_str_t *);
        v = json_object_get(obj, field);

        if (!json_is_string(v)) {
            va_end(args);
            return NGX_ERROR;
        }

        dst->data = (u_char *) json_string_value(v);
        dst->len = json_string_length(v);
    }

    va_end(args);

    return NGX_OK;
}
