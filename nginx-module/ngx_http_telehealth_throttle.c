/*
 * Throttling of guessable endpoints in Redis.
 *
 * Each subject (an account's e-mail, an invite or interpreter link, a
 * client address) has a hash of its failures: after "free" failures every
 * further one delays the subject's next attempt, the delay doubling from
 * the first back-off up to its maximum; after "lock" failures the subject
 * is locked for telehealth_throttle_lock.  A refused attempt does not
 * count: it costs nothing but a Redis round trip.  The subject's failures
 * are forgotten telehealth_throttle_lock after the last one, or, for an
 * account, at its next successful login.
 *
 * Both the check and the record are scripts, run atomically by Redis with
 * Redis' own clock, so that every nginx node sees the same state.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_throttle.h"
#include "ngx_http_telehealth_records.h"
#include "ngx_http_telehealth_redis.h"
#include "ngx_http_telehealth_session.h"
#include "th_lua.h"


/* KEYS, ARGV and answer: common/lua/throttle_check.lua */
#define ngx_http_telehealth_throttle_check_lua th_lua_throttle_check

/* KEYS, ARGV and answer: common/lua/throttle_fail.lua */
#define ngx_http_telehealth_throttle_fail_lua th_lua_throttle_fail


static char *ngx_http_telehealth_throttle_key(ngx_http_request_t *r,
    const char *scope, u_char *data, size_t len);
static void ngx_http_telehealth_throttle_checked(void *data, redisReply *reply);
static int ngx_http_telehealth_throttle_args(ngx_http_request_t *r,
    ngx_http_telehealth_throttle_t *t, const char *script, const char **argv,
    size_t *argvlen);
static void ngx_http_telehealth_throttle_ignore(void *data, redisReply *reply);
static void ngx_http_telehealth_throttle_link(ngx_http_request_t *r,
    const char *link_scope, const char *addr_scope,
    ngx_http_telehealth_throttle_pt handler);
static void ngx_http_telehealth_throttle_redeem_go(ngx_http_request_t *r,
    ngx_int_t                                                          rc);
static void ngx_http_telehealth_throttle_decide_go(ngx_http_request_t *r,
    ngx_int_t                                                          rc);


ngx_int_t
ngx_http_telehealth_throttle_check(ngx_http_request_t *r,
    const char *subject_scope, ngx_str_t *subject, const char *addr_scope,
    ngx_uint_t fail_status, ngx_uint_t reset_status,
    ngx_http_telehealth_throttle_pt handler)
{
    int                             argc;
    const char                     *argv[12];
    size_t                          argvlen[12];
    ngx_http_telehealth_ctx_t      *ctx;
    ngx_http_telehealth_throttle_t *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    t = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_throttle_t));
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->fail_status = fail_status;
    t->reset_status = reset_status;
    t->handler = handler;

    t->addr_key = ngx_http_telehealth_throttle_key(r, addr_scope,
        r->connection->addr_text.data, r->connection->addr_text.len);
    if (t->addr_key == NULL) {
        return NGX_ERROR;
    }

    if (subject != NULL) {
        t->subject_key = ngx_http_telehealth_throttle_key(r, subject_scope,
            subject->data, subject->len);
        if (t->subject_key == NULL) {
            return NGX_ERROR;
        }
    }

    argc = ngx_http_telehealth_throttle_args(r, t,
        ngx_http_telehealth_throttle_check_lua, argv, argvlen);
    if (argc == 0) {
        return NGX_ERROR;
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_throttle_checked, r, argc, argv, argvlen)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ctx->throttle = t;

    return NGX_OK;
}


static void
ngx_http_telehealth_throttle_checked(void *data, redisReply *reply)
{
    ngx_http_request_t             *r = data;
    ngx_http_telehealth_ctx_t      *ctx;
    ngx_http_telehealth_throttle_t *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    t = ctx->throttle;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply != NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                "telehealth: throttle check failed: %s",
                reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
        }

        /* nothing to record of a request that was not looked at */
        ctx->throttle = NULL;
        t->handler(r, NGX_ERROR);
        return;
    }

    if (reply->integer > 0) {
        t->retry_after = (time_t) ((reply->integer + 999) / 1000);
        t->recorded = 1;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: attempt throttled, retry after %T s", t->retry_after);

        t->handler(r, NGX_BUSY);
        return;
    }

    t->handler(r, NGX_OK);
}


void
ngx_http_telehealth_throttle_refuse(ngx_http_request_t *r)
{
    u_char                         *p, *last;
    ngx_http_telehealth_ctx_t      *ctx;
    ngx_http_telehealth_throttle_t *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    t = ctx->throttle;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    last = ngx_sprintf(p, "%T", t->retry_after > 0 ? t->retry_after : 1);

    if (ngx_http_telehealth_add_header(r, "Retry-After", p, last - p) != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_TOO_MANY_ATTEMPTS, NULL);
}


/*
 * The request is about to end: a failure counts against its subject and
 * address, a success clears the subject.  Fire and forget: the commands
 * are queued on the worker's Redis connection before the answer leaves,
 * so the next attempt on this worker sees them.
 */

void
ngx_http_telehealth_throttle_outcome(ngx_http_request_t *r)
{
    int                             argc;
    const char                     *argv[12];
    size_t                          argvlen[12];
    ngx_http_telehealth_ctx_t      *ctx;
    ngx_http_telehealth_throttle_t *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    if (ctx == NULL || ctx->throttle == NULL || ctx->throttle->recorded) {
        return;
    }

    t = ctx->throttle;
    t->recorded = 1;

    if (t->subject_key != NULL && t->reset_status
        && r->headers_out.status == t->reset_status)
    {
        argv[0] = "DEL";
        argv[1] = t->subject_key;
        argvlen[0] = 3;
        argvlen[1] = ngx_strlen(t->subject_key);

        (void) ngx_http_telehealth_redis_command(NULL, r->connection->log,
            ngx_http_telehealth_throttle_ignore, NULL, 2, argv, argvlen);
        return;
    }

    if (r->headers_out.status != t->fail_status) {
        return;
    }

    argc = ngx_http_telehealth_throttle_args(r, t,
        ngx_http_telehealth_throttle_fail_lua, argv, argvlen);
    if (argc == 0) {
        return;
    }

    if (ngx_http_telehealth_redis_command(NULL, r->connection->log,
            ngx_http_telehealth_throttle_ignore, NULL, argc, argv, argvlen)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
            "telehealth: failed attempt not recorded: "
            "Redis unavailable");
    }
}


/*
 * EVAL script, the keys (address, then subject), then the first and
 * maximum back-off and the lock (ms), then each key's free and lock
 * failures.  Returns argc (at most 12), or 0.
 */

static int
ngx_http_telehealth_throttle_args(ngx_http_request_t *r,
    ngx_http_telehealth_throttle_t *t, const char *script, const char **argv,
    size_t *argvlen)
{
    int                              argc, i;
    u_char                          *p;
    ngx_http_telehealth_main_conf_t *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_telehealth_module);

    p = ngx_pnalloc(r->pool, 7 * (NGX_INT_T_LEN + 1));
    if (p == NULL) {
        return 0;
    }

    argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = script;
    argv[argc++] = t->subject_key ? "2" : "1";
    argv[argc++] = t->addr_key;

    if (t->subject_key) {
        argv[argc++] = t->subject_key;
    }

#define ngx_http_telehealth_throttle_arg(fmt, v) \
    argv[argc++] = (char *) p;                   \
    p = ngx_sprintf(p, fmt "%Z", v)

    ngx_http_telehealth_throttle_arg("%M", mcf->throttle.backoff);
    ngx_http_telehealth_throttle_arg("%M", mcf->throttle.backoff_max);
    ngx_http_telehealth_throttle_arg("%M", mcf->throttle.lock);
    ngx_http_telehealth_throttle_arg("%ui", mcf->throttle.addr_free);
    ngx_http_telehealth_throttle_arg("%ui", mcf->throttle.addr_lock);

    if (t->subject_key) {
        ngx_http_telehealth_throttle_arg("%ui", mcf->throttle.subject_free);
        ngx_http_telehealth_throttle_arg("%ui", mcf->throttle.subject_lock);
    }

#undef ngx_http_telehealth_throttle_arg

    for (i = 0; i < argc; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    return argc;
}


static void
ngx_http_telehealth_throttle_ignore(void *data, redisReply *reply)
{
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
            "telehealth: throttle record failed: %s", reply->str);
    }
}


/* <prefix>throttle:<scope>:<SHA-256 hex of the value> */

static char *
ngx_http_telehealth_throttle_key(ngx_http_request_t *r, const char *scope,
    u_char *data, size_t len)
{
    u_char *id, *p;
    char    hex[65];

    th_sha256_hex(data, len, hex);

    id = ngx_pnalloc(r->pool, ngx_strlen(scope) + 1 + 64 + 1);
    if (id == NULL) {
        return NULL;
    }

    p = ngx_sprintf(id, "%s:%s%Z", scope, hex);
    (void) p;

    return ngx_http_telehealth_redis_key(r->pool, TH_KEY_THROTTLE, (char *) id);
}


/*
 * POST /invites/redeem and POST /interpreter-requests/decide: a link that
 * does not exist (404) is a failure of the link and of the address.
 */

void
ngx_http_telehealth_throttle_redeem(ngx_http_request_t *r)
{
    ngx_http_telehealth_throttle_link(r, TH_THROTTLE_REDEEM_LINK,
        TH_THROTTLE_REDEEM_ADDR, ngx_http_telehealth_throttle_redeem_go);
}


void
ngx_http_telehealth_throttle_decide(ngx_http_request_t *r)
{
    ngx_http_telehealth_throttle_link(r, TH_THROTTLE_DECIDE_LINK,
        TH_THROTTLE_DECIDE_ADDR, ngx_http_telehealth_throttle_decide_go);
}


static void
ngx_http_telehealth_throttle_link(ngx_http_request_t *r, const char *link_scope,
    const char *addr_scope, ngx_http_telehealth_throttle_pt handler)
{
    json_t                    *token;
    ngx_str_t                  link, *subject;
    ngx_int_t                  rc;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    subject = NULL;
    token = json_object_get(ctx->body, "token");

    /* a request without a link is answered 400 by the handler */
    if (json_is_string(token) && json_string_length(token) > 0) {
        link.data = (u_char *) json_string_value(token);
        link.len = json_string_length(token);
        subject = &link;
    }

    rc = ngx_http_telehealth_throttle_check(r, link_scope, subject, addr_scope,
        NGX_HTTP_NOT_FOUND, 0, handler);
    if (rc == NGX_ERROR) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);

    } else if (rc != NGX_OK) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_throttle_redeem_go(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc == NGX_BUSY) {
        ngx_http_telehealth_throttle_refuse(r);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    ngx_http_telehealth_invite_redeem(r);
}


static void
ngx_http_telehealth_throttle_decide_go(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc == NGX_BUSY) {
        ngx_http_telehealth_throttle_refuse(r);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    ngx_http_telehealth_records_handler(r);
}


/*
 * POST /sessions/{id}/invites and .../resend: at most telehealth_invite_limit
 * an hour per staff member and per organisation (each SMS, e-mail or
 * WhatsApp goes out under the organisation's name).  Every request that
 * passes counts, whatever its answer; one over the limit is answered 429
 * rate-limited with Retry-After, the seconds until the window ends.
 */

#define NGX_HTTP_TELEHEALTH_QUOTA_WINDOW "3600000" /* ms */


static void ngx_http_telehealth_throttle_invites_checked(void *data,
    redisReply                                                *reply);


void
ngx_http_telehealth_throttle_invites(ngx_http_request_t *r)
{
    int                              i;
    u_char                          *buf, *p;
    const char                      *argv[8];
    size_t                           argvlen[8];
    ngx_http_telehealth_ctx_t       *ctx;
    ngx_http_telehealth_main_conf_t *mcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_telehealth_module);

    if (mcf->invite_limit[0] == 0 && mcf->invite_limit[1] == 0) {
        ngx_http_telehealth_records_handler(r);
        return;
    }

    buf = ngx_pnalloc(r->pool,
        sizeof("invites:staff:") + ctx->caller.id.len + sizeof("invites:org:")
            + ctx->caller.org.len + 2 * (NGX_INT_T_LEN + 1));
    if (buf == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    argv[0] = "EVAL";
    argv[1] = th_lua_quota;
    argv[2] = "2";

    p = ngx_sprintf(buf, "invites:staff:%V%Z", &ctx->caller.id);
    argv[3] =
        ngx_http_telehealth_redis_key(r->pool, TH_KEY_QUOTA, (char *) buf);
    buf = p;
    p = ngx_sprintf(buf, "invites:org:%V%Z", &ctx->caller.org);
    argv[4] =
        ngx_http_telehealth_redis_key(r->pool, TH_KEY_QUOTA, (char *) buf);

    if (argv[3] == NULL || argv[4] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    argv[5] = NGX_HTTP_TELEHEALTH_QUOTA_WINDOW;
    argv[6] = (char *) p;
    p = ngx_sprintf(p, "%ui%Z", mcf->invite_limit[0]);
    argv[7] = (char *) p;
    (void) ngx_sprintf(p, "%ui%Z", mcf->invite_limit[1]);

    for (i = 0; i < 8; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_throttle_invites_checked, r, 8, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_throttle_invites_checked(void *data, redisReply *reply)
{
    u_char                    *p, *last;
    ngx_http_request_t        *r = data;
    ngx_http_telehealth_ctx_t *ctx;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply != NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                "telehealth: invite limit check failed: %s",
                reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
        }

        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    if (reply->integer <= 0) {
        ngx_http_telehealth_records_handler(r);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
        "telehealth: invite limit reached by staff %V of "
        "organisation %V",
        &ctx->caller.id, &ctx->caller.org);

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    last = ngx_sprintf(p, "%T", (time_t) ((reply->integer + 999) / 1000));

    if (ngx_http_telehealth_add_header(r, "Retry-After", p, last - p) != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_RATE_LIMITED,
        "Too many invites were sent this hour. Please "
        "try again later.");
}
