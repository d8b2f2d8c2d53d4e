/*
 * Console streams: one long response per open console, written to as
 * events arrive.
 *
 * A stream first replays what its client missed (Last-Event-ID) or learns
 * where "now" is, then takes live events from the worker's LISTEN
 * connection.  Notifications that arrive while a replay runs are not
 * written but make the replay run once more, and every reconnect of the
 * LISTEN connection replays each stream from its last id, so an event is
 * neither lost nor written twice (ids are visible in id order, see
 * th_console_event_id() in sql/functions/console.sql).
 *
 * A stream ends cleanly (an "end" event, the last chunk, then the usual
 * finalization) when its token expires or is revoked, and when nginx shuts
 * down gracefully: an HTTP/1 connection is marked idle, so
 * ngx_close_idle_connections() reaches it and old workers do not wait for
 * consoles to go away; an HTTP/2 stream ends at its next heartbeat.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_console.h"
#include "ngx_http_telehealth_api.h"
#include "ngx_http_telehealth_auth.h"
#include "ngx_http_telehealth_pg.h"
#include "ngx_http_telehealth_redis.h"


#define NGX_HTTP_TELEHEALTH_CONSOLE_TICKET_TTL   30 /* s */
#define NGX_HTTP_TELEHEALTH_CONSOLE_TICKET_BYTES 32
#define NGX_HTTP_TELEHEALTH_CONSOLE_REPLAY_MAX   200 /* rows a query */
#define NGX_HTTP_TELEHEALTH_CONSOLE_BUSY_MAX     64  /* unsent buffers */
#define NGX_HTTP_TELEHEALTH_CONSOLE_BUF_SIZE     1024
#define NGX_HTTP_TELEHEALTH_CONSOLE_EXPIRE_EVERY 60000  /* ms */
#define NGX_HTTP_TELEHEALTH_CONSOLE_RETRY        "2000" /* ms, for clients */
#define NGX_HTTP_TELEHEALTH_CONSOLE_FULL_RETRY   "30"   /* s, when refused */


typedef struct {
    ngx_http_request_t           *request;
    ngx_http_telehealth_caller_t *caller;
    char                         *revoked; /* the token's Redis key */
    char                         *nbf;     /* its holder's "not
                                                    before" key */
    ngx_queue_t                   queue;
    ngx_event_t                   timer;   /* heartbeat, expiry */
    int64_t                       last_id; /* -1: not known yet */
    u_char                        last[NGX_INT64_LEN + 1];
    const char                   *params[3];
    ngx_http_telehealth_pg_req_t *pg;
    ngx_pool_t                   *check; /* the revocation check's */
    ngx_chain_t                  *free;
    ngx_chain_t                  *busy;
    ngx_event_handler_pt          read_handler;

    unsigned listed : 1;
    unsigned started : 1;
    unsigned replaying : 1;
    unsigned missed : 1;
    unsigned retry : 1;
    unsigned checking : 1;
    unsigned idle : 1;
    unsigned done : 1;
} ngx_http_telehealth_console_stream_t;


typedef struct {
    ngx_queue_t streams;
    ngx_msec_t  heartbeat;
    ngx_log_t  *log;

    /* the first worker deletes old events, and applies the retention of
     * notifications, processed events and invites (th_retention()) */
    ngx_event_t expire;
    ngx_pool_t *expire_pool;
    u_char      retention[4][NGX_TIME_T_LEN + 1];
    const char *expire_params[4];
} ngx_http_telehealth_console_t;


static void ngx_http_telehealth_console_notify(const char *payload);
static void ngx_http_telehealth_console_listening(void);
static void ngx_http_telehealth_console_expire(ngx_event_t *ev);
static void ngx_http_telehealth_console_expired(
    ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_console_redis(ngx_http_request_t *r,
    ngx_http_telehealth_redis_handler_pt handler, int argc, const char **argv);
static void ngx_http_telehealth_console_ticket_set(void *data,
    redisReply                                          *reply);
static void ngx_http_telehealth_console_ticket_got(void *data,
    redisReply                                          *reply);
static void ngx_http_telehealth_console_open(ngx_http_request_t *r);
static ngx_int_t ngx_http_telehealth_console_full(ngx_http_request_t *r,
    ngx_http_telehealth_console_t                                    *con);
static ngx_int_t ngx_http_telehealth_console_last_id(ngx_http_request_t *r,
    int64_t                                                             *id);
static ngx_int_t ngx_http_telehealth_console_replay(
    ngx_http_telehealth_console_stream_t *st);
static ngx_int_t ngx_http_telehealth_console_start(
    ngx_http_telehealth_console_stream_t *st);
static void ngx_http_telehealth_console_replayed(
    ngx_http_telehealth_pg_req_t *pg);
static ngx_int_t
ngx_http_telehealth_console_event(ngx_http_telehealth_console_stream_t *st,
    int64_t id, const char *type, const char *data, size_t len);
static ngx_int_t
ngx_http_telehealth_console_send(ngx_http_telehealth_console_stream_t *st,
    ngx_chain_t                                                       *cl);
static ngx_chain_t *
ngx_http_telehealth_console_buf(ngx_http_telehealth_console_stream_t *st,
    size_t                                                            size);
static void ngx_http_telehealth_console_heartbeat(ngx_event_t *ev);
static void ngx_http_telehealth_console_arm(
    ngx_http_telehealth_console_stream_t *st);
static void ngx_http_telehealth_console_revoked(void *data, redisReply *reply);
static void ngx_http_telehealth_console_end(ngx_http_telehealth_console_stream_t
                                                *st,
    const char                                  *reason);
static void
ngx_http_telehealth_console_close(ngx_http_telehealth_console_stream_t *st,
    ngx_int_t                                                           rc);
static void ngx_http_telehealth_console_unlist(
    ngx_http_telehealth_console_stream_t *st);
static void ngx_http_telehealth_console_read(ngx_event_t *rev);
static void ngx_http_telehealth_console_write(ngx_http_request_t *r);
static void ngx_http_telehealth_console_cleanup(void *data);


static ngx_http_telehealth_console_t *ngx_http_telehealth_console;


/* kept here: LISTEN is a session's state, not a statement to wrap */
static const char ngx_http_telehealth_console_listen_sql[] =
    "LISTEN th_console";

/* $1 staff, $2 org, $3 the last id the client has */
static const char ngx_http_telehealth_console_replay_sql[] =
    "SELECT * FROM th_console_replay($1, $2, $3)";

static const char ngx_http_telehealth_console_position_sql[] =
    "SELECT th_console_position()";

/* $1 seconds; $2-$4 telehealth_retention_* (sql/functions/retention.sql) */
static const char ngx_http_telehealth_console_expire_sql[] =
    "SELECT th_console_expire($1) + th_retention($2, $3, $4)";


ngx_int_t
ngx_http_telehealth_console_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                  *mcf)
{
    ngx_uint_t                     i;
    ngx_http_telehealth_console_t *con;

    con = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_console_t));
    if (con == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&con->streams);
    con->heartbeat = mcf->console_heartbeat;
    con->log = cycle->log;

    ngx_http_telehealth_console = con;

    if (ngx_http_telehealth_pg_listen(cycle,
            ngx_http_telehealth_console_listen_sql,
            ngx_http_telehealth_console_notify,
            ngx_http_telehealth_console_listening)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_worker == 0) {
        ngx_sprintf(con->retention[0], "%T%Z", mcf->console_retention);
        ngx_sprintf(con->retention[1], "%T%Z", mcf->retention_notifications);
        ngx_sprintf(con->retention[2], "%T%Z", mcf->retention_processed_events);
        ngx_sprintf(con->retention[3], "%T%Z", mcf->retention_invites);

        for (i = 0; i < 4; i++) {
            con->expire_params[i] = (const char *) con->retention[i];
        }

        con->expire.handler = ngx_http_telehealth_console_expire;
        con->expire.data = con;
        con->expire.log = cycle->log;
        con->expire.cancelable = 1;

        ngx_add_timer(&con->expire, 1000);
    }

    return NGX_OK;
}


void
ngx_http_telehealth_console_exit_process(void)
{
    ngx_http_telehealth_console_t *con;

    con = ngx_http_telehealth_console;
    if (con == NULL) {
        return;
    }

    if (con->expire.timer_set) {
        ngx_del_timer(&con->expire);
    }

    if (con->expire_pool != NULL) {
        ngx_destroy_pool(con->expire_pool);
        con->expire_pool = NULL;
    }

    ngx_http_telehealth_console = NULL;
}


/* retention: the first worker deletes what is older than it */

static void
ngx_http_telehealth_console_expire(ngx_event_t *ev)
{
    ngx_http_telehealth_pg_req_t  *pg;
    ngx_http_telehealth_console_t *con = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (con->expire_pool == NULL) {
        con->expire_pool = ngx_create_pool(1024, con->log);
        if (con->expire_pool == NULL) {
            goto again;
        }

        pg = ngx_http_telehealth_pg_create(con->expire_pool, con->log);
        if (pg == NULL) {
            goto failed;
        }

        pg->handler = ngx_http_telehealth_console_expired;
        pg->data = con;

        if (ngx_http_telehealth_pg_query(pg,
                ngx_http_telehealth_console_expire_sql, 4, con->expire_params)
            != NGX_AGAIN)
        {
            goto failed;
        }
    }

    return;

failed:

    ngx_destroy_pool(con->expire_pool);
    con->expire_pool = NULL;

again:

    ngx_add_timer(&con->expire, NGX_HTTP_TELEHEALTH_CONSOLE_EXPIRE_EVERY);
}


static void
ngx_http_telehealth_console_expired(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_telehealth_console_t *con = pg->data;

    if (ngx_http_telehealth_pg_ok(pg) && PQntuples(pg->result) == 1
        && ngx_strcmp(PQgetvalue(pg->result, 0, 0), "0") != 0)
    {
        ngx_log_error(NGX_LOG_INFO, con->log, 0,
            "telehealth: retention: %s old console events, "
            "notifications, processed events and invites "
            "deleted or scrubbed",
            PQgetvalue(pg->result, 0, 0));
    }

    ngx_destroy_pool(con->expire_pool);
    con->expire_pool = NULL;

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(&con->expire, NGX_HTTP_TELEHEALTH_CONSOLE_EXPIRE_EVERY);
    }
}


/* POST /me/events/ticket: a single-use ticket for an EventSource */

void
ngx_http_telehealth_console_ticket(ngx_http_request_t *r)
{
    char                      *key, *value, *text, hash[65];
    char                       ticket[64], ttl[NGX_INT_T_LEN + 1];
    json_t                    *json;
    const char                *argv[6];
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (th_random_b64url(ticket, sizeof(ticket),
            NGX_HTTP_TELEHEALTH_CONSOLE_TICKET_BYTES)
        != 0)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* only the ticket's hash is a key: Redis never holds the ticket */
    th_sha256_hex(ticket, ngx_strlen(ticket), hash);

    /* the claims of the token, as ngx_http_telehealth_caller() reads them */
    json = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "typ",
        ngx_http_telehealth_caller_type(&ctx->caller), "sub",
        ctx->caller.id.data, "org", ctx->caller.org.data, "role",
        ctx->caller.role.data, "name", ctx->caller.name.data, "jti",
        ctx->caller.jti.data, "exp", (json_int_t) ctx->caller.exp);
    if (json == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    text = json_dumps(json, JSON_COMPACT);
    json_decref(json);

    if (text == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    value = ngx_pnalloc(r->pool, ngx_strlen(text) + 1);
    if (value != NULL) {
        ngx_cpystrn((u_char *) value, (u_char *) text, ngx_strlen(text) + 1);
    }

    free(text);

    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_CONSOLE_TICKET, hash);

    ctx->data = ngx_pnalloc(r->pool, sizeof(ticket));

    if (value == NULL || key == NULL || ctx->data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(ctx->data, ticket, sizeof(ticket));

    ngx_sprintf((u_char *) ttl, "%d%Z", NGX_HTTP_TELEHEALTH_CONSOLE_TICKET_TTL);

    argv[0] = "SET";
    argv[1] = key;
    argv[2] = value;
    argv[3] = "EX";
    argv[4] = ttl;
    argv[5] = "NX";

    ngx_http_telehealth_console_redis(r, ngx_http_telehealth_console_ticket_set,
        6, argv);
}


/* a Redis command for the request; 503 at once while Redis is down */

static void
ngx_http_telehealth_console_redis(ngx_http_request_t *r,
    ngx_http_telehealth_redis_handler_pt handler, int argc, const char **argv)
{
    int    i;
    size_t argvlen[6];

    for (i = 0; i < argc; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log, handler,
            r, argc, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_console_ticket_set(void *data, redisReply *reply)
{
    ngx_http_request_t        *r = data;
    json_t                    *json;
    ngx_http_telehealth_ctx_t *ctx;

    if (reply == NULL || reply->type != REDIS_REPLY_STATUS) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    json = json_pack("{s:s, s:i}", "ticket", (char *) ctx->data, "expires_in",
        NGX_HTTP_TELEHEALTH_CONSOLE_TICKET_TTL);

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_OK, json));
}


ngx_uint_t
ngx_http_telehealth_console_streams_open(void)
{
    ngx_uint_t   n;
    ngx_queue_t *q, *streams;

    if (ngx_http_telehealth_console == NULL) {
        return 0;
    }

    n = 0;
    streams = &ngx_http_telehealth_console->streams;

    for (q = ngx_queue_head(streams); q != ngx_queue_sentinel(streams);
        q = ngx_queue_next(q))
    {
        n++;
    }

    return n;
}


/* GET /me/events */

void
ngx_http_telehealth_console_events(ngx_http_request_t *r)
{
    u_char                    *p, *last;
    char                      *key, hash[65];
    const char                *argv[2];
    ngx_str_t                  ticket;
    ngx_http_telehealth_ctx_t *ctx;

    /* everyone has a stream: staff their console, all their messages */
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    ctx->guests = 1;

    if (ngx_http_arg(r, (u_char *) "ticket", 6, &ticket) != NGX_OK) {
        ngx_http_telehealth_authenticate(r, ngx_http_telehealth_console_open);
        return;
    }

    /* base64url of the random bytes, nothing else */
    last = ticket.data + ticket.len;

    for (p = ticket.data; p < last; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
                || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
        {
            break;
        }
    }

    if (ticket.len == 0 || ticket.len > 64 || p != last) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;
    }

    th_sha256_hex(ticket.data, ticket.len, hash);

    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_CONSOLE_TICKET, hash);
    if (key == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* GETDEL: a ticket is good for one stream, even when raced */
    argv[0] = "GETDEL";
    argv[1] = key;

    ngx_http_telehealth_console_redis(r, ngx_http_telehealth_console_ticket_got,
        2, argv);
}


static void
ngx_http_telehealth_console_ticket_got(void *data, redisReply *reply)
{
    ngx_http_request_t           *r = data;
    json_t                       *json;
    json_error_t                  err;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_caller_t *caller;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    if (reply->type != REDIS_REPLY_STRING) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: unknown, used or expired console ticket");
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED,
            "This console link is no longer valid. "
            "Please reconnect.");
        return;
    }

    json = ngx_http_telehealth_json_track(r->pool,
        json_loadb(reply->str, reply->len, 0, &err));

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    caller = &ctx->caller;

    if (json == NULL || ngx_http_telehealth_caller(r, json, caller) != NGX_OK) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (caller->exp <= ngx_time()) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;
    }

    /* the token behind the ticket may have been revoked meanwhile */
    ngx_http_telehealth_authenticate_caller(r,
        ngx_http_telehealth_console_open);
}


/* the caller is known: answer with the stream's head, then replay */

static void
ngx_http_telehealth_console_open(ngx_http_request_t *r)
{
    int64_t                               last_id;
    ngx_connection_t                     *c;
    ngx_pool_cleanup_t                   *cln;
    ngx_http_telehealth_ctx_t            *ctx;
    ngx_http_telehealth_console_t        *con;
    ngx_http_telehealth_console_stream_t *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    con = ngx_http_telehealth_console;
    c = r->connection;

    if (con == NULL) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    if (ngx_http_telehealth_console_full(r, con) != NGX_OK) {
        return;
    }

    if (ngx_http_telehealth_console_last_id(r, &last_id) != NGX_OK) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
            "Last-Event-ID must be the id of an event.");
        return;
    }

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_console_stream_t));
    if (st == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_telehealth_console_cleanup;
    cln->data = st;

    st->revoked = ngx_http_telehealth_redis_key(r->pool, TH_KEY_REVOKED,
        (char *) ctx->caller.jti.data);
    st->nbf = ngx_http_telehealth_redis_key(r->pool, TH_KEY_PERSON_NBF,
        (char *) ctx->caller.id.data);
    if (st->revoked == NULL || st->nbf == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    st->request = r;
    st->caller = &ctx->caller;
    st->last_id = last_id;
    st->timer.handler = ngx_http_telehealth_console_heartbeat;
    st->timer.data = st;
    st->timer.log = c->log;
    ctx->data = st;

    /*
     * Listed before the first query, so that what commits while it runs
     * makes it run again; the head of the response goes out after it, so
     * a client that has the head misses nothing that comes later.
     */
    ngx_queue_insert_tail(&con->streams, &st->queue);
    st->listed = 1;

    if (ngx_http_telehealth_console_replay(st) != NGX_OK) {
        ngx_http_telehealth_console_unlist(st);
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


/*
 * telehealth_console_streams: the worker's open consoles (503, another
 * worker or nginx may have room) and a person's on this worker (429
 * rate-limited); both answers carry Retry-After.
 */

static ngx_int_t
ngx_http_telehealth_console_full(ngx_http_request_t *r,
    ngx_http_telehealth_console_t                   *con)
{
    u_char                               *p;
    ngx_str_t                            *id;
    ngx_uint_t                            all, mine;
    ngx_queue_t                          *q;
    ngx_http_telehealth_ctx_t            *ctx;
    ngx_http_telehealth_console_stream_t *other;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    id = &ctx->caller.id;

    all = 0;
    mine = 0;

    for (q = ngx_queue_head(&con->streams);
        q != ngx_queue_sentinel(&con->streams); q = ngx_queue_next(q))
    {
        other = ngx_queue_data(q, ngx_http_telehealth_console_stream_t, queue);
        all++;

        if (other->caller->id.len == id->len
            && ngx_strncmp(other->caller->id.data, id->data, id->len) == 0)
        {
            mine++;
        }
    }

    if ((ctx->mcf->console_streams[1] == 0
            || all < ctx->mcf->console_streams[1])
        && (ctx->mcf->console_streams[0] == 0
            || mine < ctx->mcf->console_streams[0]))
    {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
        "telehealth: console refused: %ui open on this worker, "
        "%ui of staff %V",
        all, mine, id);

    if (ctx->mcf->console_streams[1] && all >= ctx->mcf->console_streams[1]) {
        /* with Retry-After, as every 503 */
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE,
            "Too many consoles are open on this "
            "server. Please try again shortly.");
        return NGX_ERROR;
    }

    p = (u_char *) NGX_HTTP_TELEHEALTH_CONSOLE_FULL_RETRY;

    if (ngx_http_telehealth_add_header(r, "Retry-After", p, ngx_strlen(p))
        != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_RATE_LIMITED,
        "Too many consoles are open for you. Close "
        "one and try again.");

    return NGX_ERROR;
}


/* the head of the response and the first lines: the stream is on */

static ngx_int_t
ngx_http_telehealth_console_start(ngx_http_telehealth_console_stream_t *st)
{
    ngx_int_t           rc;
    ngx_chain_t        *cl;
    ngx_connection_t   *c;
    ngx_http_request_t *r;

    r = st->request;
    c = r->connection;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = -1;
    ngx_str_set(&r->headers_out.content_type, "text/event-stream");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->keepalive = 0;

    if (ngx_http_telehealth_add_header(r, "Cache-Control",
            (u_char *) "no-store", 8)
            != NGX_OK
        || ngx_http_telehealth_add_header(r, "X-Accel-Buffering",
               (u_char *) "no", 2)
               != NGX_OK)
    {
        ngx_http_telehealth_console_close(st, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_telehealth_console_close(st, rc);
        return NGX_ERROR;
    }

    st->started = 1;

    /* reached by ngx_close_idle_connections() on a graceful shutdown */
    if (r == r->main && c->fd != (ngx_socket_t) -1
#if (NGX_HTTP_V2)
        && r->stream == NULL
#endif
    )
    {
        st->read_handler = c->read->handler;
        c->read->handler = ngx_http_telehealth_console_read;
        c->idle = 1;
        st->idle = 1;
    }

    r->write_event_handler = ngx_http_telehealth_console_write;

    ngx_http_telehealth_console_arm(st);

    cl = ngx_http_telehealth_console_buf(st, 64);
    if (cl == NULL) {
        ngx_http_telehealth_console_close(st, NGX_ERROR);
        return NGX_ERROR;
    }

    cl->buf->last = ngx_sprintf(cl->buf->last,
        ": console\nretry: " NGX_HTTP_TELEHEALTH_CONSOLE_RETRY "\n\n");

    if (ngx_http_telehealth_console_send(st, cl) != NGX_OK) {
        ngx_http_telehealth_console_close(st, NGX_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Last-Event-ID (EventSource) or ?last_event_id= (a new EventSource) */

static ngx_int_t
ngx_http_telehealth_console_last_id(ngx_http_request_t *r, int64_t *id)
{
    ngx_str_t        value;
    ngx_uint_t       i;
    ngx_list_part_t *part;
    ngx_table_elt_t *h;

    ngx_str_null(&value);

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Last-Event-ID") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Last-Event-ID",
                   sizeof("Last-Event-ID") - 1)
                   == 0)
        {
            value = h[i].value;
            break;
        }
    }

    if (value.len == 0
        && ngx_http_arg(r, (u_char *) "last_event_id", 13, &value) != NGX_OK)
    {
        *id = -1;
        return NGX_OK;
    }

    if (value.len == 0 || value.len > 18) {
        return NGX_ERROR;
    }

    *id = ngx_atoof(value.data, value.len);

    return (*id == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


/* what the client missed, or where "now" is; again while events came */

static ngx_int_t
ngx_http_telehealth_console_replay(ngx_http_telehealth_console_stream_t *st)
{
    ngx_int_t           rc;
    ngx_http_request_t *r;

    r = st->request;

    if (st->pg == NULL) {
        st->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
        if (st->pg == NULL) {
            st->retry = 1;
            return NGX_ERROR;
        }

        st->pg->handler = ngx_http_telehealth_console_replayed;
        st->pg->data = st;
    }

    st->replaying = 1;
    st->missed = 0;
    st->retry = 0;

    if (st->last_id < 0) {
        rc = ngx_http_telehealth_pg_query(st->pg,
            ngx_http_telehealth_console_position_sql, 0, NULL);

    } else {
        ngx_sprintf(st->last, "%L%Z", st->last_id);

        st->params[0] = (const char *) st->caller->id.data;
        st->params[1] = (const char *) st->caller->org.data;
        st->params[2] = (const char *) st->last;

        rc = ngx_http_telehealth_pg_query(st->pg,
            ngx_http_telehealth_console_replay_sql, 3, st->params);
    }

    if (rc != NGX_AGAIN) {
        /* PostgreSQL is down: the next heartbeat tries again */
        st->retry = 1;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_console_replayed(ngx_http_telehealth_pg_req_t *pg)
{
    int                                   i, n;
    int64_t                               id;
    PGresult                             *res;
    ngx_http_telehealth_console_stream_t *st = pg->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        if (!st->started) {
            ngx_http_telehealth_console_unlist(st);
            st->done = 1;
            ngx_http_telehealth_fail_pg(st->request, pg);
            return;
        }

        st->retry = 1;
        return;
    }

    if (!st->started && ngx_http_telehealth_console_start(st) != NGX_OK) {
        return;
    }

    res = pg->result;
    n = PQntuples(res);

    if (st->last_id < 0) {
        st->last_id = (n == 1) ? ngx_atoof((u_char *) PQgetvalue(res, 0, 0),
                                     PQgetlength(res, 0, 0))
                               : NGX_ERROR;

        if (st->last_id < 0) {
            ngx_http_telehealth_console_close(st, NGX_ERROR);
            return;
        }

        n = 0;
    }

    for (i = 0; i < n; i++) {
        id =
            ngx_atoof((u_char *) PQgetvalue(res, i, 0), PQgetlength(res, i, 0));

        if (id <= st->last_id) {
            continue;
        }

        if (ngx_http_telehealth_console_event(st, id, PQgetvalue(res, i, 1),
                PQgetvalue(res, i, 2), PQgetlength(res, i, 2))
            != NGX_OK)
        {
            ngx_http_telehealth_console_close(st, NGX_ERROR);
            return;
        }
    }

    if (st->missed || n == NGX_HTTP_TELEHEALTH_CONSOLE_REPLAY_MAX) {
        ngx_http_telehealth_console_replay(st);
        return;
    }

    /* the result (libpq's 2 KB block at least) need not live as long */
    ngx_http_telehealth_pg_release(pg);

    st->replaying = 0;
}


/* the LISTEN connection is (again) up: whatever came meanwhile is due */

static void
ngx_http_telehealth_console_listening(void)
{
    ngx_queue_t                          *q;
    ngx_http_telehealth_console_t        *con;
    ngx_http_telehealth_console_stream_t *st;

    con = ngx_http_telehealth_console;
    if (con == NULL) {
        return;
    }

    for (q = ngx_queue_head(&con->streams);
        q != ngx_queue_sentinel(&con->streams); q = ngx_queue_next(q))
    {
        st = ngx_queue_data(q, ngx_http_telehealth_console_stream_t, queue);

        if (st->replaying) {
            st->missed = 1;

        } else {
            st->retry = 1;
        }
    }

    /* replays start from the queue walk below, one per stream */
    for (q = ngx_queue_head(&con->streams);
        q != ngx_queue_sentinel(&con->streams);
        /* void */)
    {
        st = ngx_queue_data(q, ngx_http_telehealth_console_stream_t, queue);
        q = ngx_queue_next(q);

        if (st->retry && !st->replaying) {
            ngx_http_telehealth_console_replay(st);
        }
    }
}


/* a notification: {"id", "org", "staff", "event", "data"} */

static void
ngx_http_telehealth_console_notify(const char *payload)
{
    char                                 *data;
    json_t                               *json, *id, *staff, *org, *event;
    json_error_t                          err;
    ngx_queue_t                          *q;
    ngx_connection_t                     *c;
    ngx_http_telehealth_console_t        *con;
    ngx_http_telehealth_console_stream_t *st;

    con = ngx_http_telehealth_console;
    if (con == NULL || ngx_queue_empty(&con->streams)) {
        return;
    }

    json = json_loads(payload, 0, &err);
    if (json == NULL) {
        ngx_log_error(NGX_LOG_ERR, con->log, 0,
            "telehealth: bad console notification: %s", err.text);
        return;
    }

    id = json_object_get(json, "id");
    staff = json_object_get(json, "staff");
    org = json_object_get(json, "org");
    event = json_object_get(json, "event");
    data = NULL;

    if (!json_is_integer(id) || !json_is_string(staff) || !json_is_string(org)
        || !json_is_string(event))
    {
        ngx_log_error(NGX_LOG_ERR, con->log, 0,
            "telehealth: console notification lacks fields");
        goto done;
    }

    for (q = ngx_queue_head(&con->streams);
        q != ngx_queue_sentinel(&con->streams);
        /* void */)
    {
        st = ngx_queue_data(q, ngx_http_telehealth_console_stream_t, queue);
        q = ngx_queue_next(q);

        if (ngx_strcmp(st->caller->id.data, json_string_value(staff)) != 0
            || ngx_strcmp(st->caller->org.data, json_string_value(org)) != 0)
        {
            continue;
        }

        if (st->replaying || st->retry) {
            st->missed = 1;
            continue;
        }

        if (json_integer_value(id) <= st->last_id) {
            continue;
        }

        if (data == NULL) {
            data = json_dumps(json_object_get(json, "data"), JSON_COMPACT);
            if (data == NULL) {
                goto done;
            }
        }

        c = st->request->connection;

        if (ngx_http_telehealth_console_event(st, json_integer_value(id),
                json_string_value(event), data, ngx_strlen(data))
            != NGX_OK)
        {
            ngx_http_telehealth_console_close(st, NGX_ERROR);
        }

        ngx_http_run_posted_requests(c);
    }

done:

    free(data);
    json_decref(json);
}


static ngx_int_t
ngx_http_telehealth_console_event(ngx_http_telehealth_console_stream_t *st,
    int64_t id, const char *type, const char *data, size_t len)
{
    size_t       size;
    ngx_chain_t *cl;

    size = sizeof("id: \nevent: \ndata: \n\n") - 1 + NGX_INT64_LEN
           + ngx_strlen(type) + len;

    cl = ngx_http_telehealth_console_buf(st, size);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    /* the data is JSON on one line: no newline can end it early */
    cl->buf->last =
        ngx_sprintf(cl->buf->last, "id: %L\nevent: %s\ndata: ", id, type);
    cl->buf->last = ngx_cpymem(cl->buf->last, data, len);
    *cl->buf->last++ = '\n';
    *cl->buf->last++ = '\n';

    st->last_id = id;

    return ngx_http_telehealth_console_send(st, cl);
}


/* a buffer of at least size bytes, reused once the client has it */

static ngx_chain_t *
ngx_http_telehealth_console_buf(ngx_http_telehealth_console_stream_t *st,
    size_t                                                            size)
{
    ngx_buf_t   *b;
    ngx_chain_t *cl;

    cl = ngx_chain_get_free_buf(st->request->pool, &st->free);
    if (cl == NULL) {
        return NULL;
    }

    b = cl->buf;

    if (b->start == NULL || (size_t) (b->end - b->start) < size) {
        size = ngx_max(size, NGX_HTTP_TELEHEALTH_CONSOLE_BUF_SIZE);

        b->start = ngx_palloc(st->request->pool, size);
        if (b->start == NULL) {
            return NULL;
        }

        b->end = b->start + size;
    }

    b->pos = b->start;
    b->last = b->start;
    b->temporary = 1;
    b->flush = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_telehealth_module;

    return cl;
}


static ngx_int_t
ngx_http_telehealth_console_send(ngx_http_telehealth_console_stream_t *st,
    ngx_chain_t                                                       *cl)
{
    ngx_int_t                 rc;
    ngx_uint_t                n;
    ngx_chain_t              *ln;
    ngx_http_request_t       *r;
    ngx_http_core_loc_conf_t *clcf;

    r = st->request;

    rc = ngx_http_output_filter(r, cl);

    ngx_chain_update_chains(r->pool, &st->free, &st->busy, &cl,
        (ngx_buf_tag_t) &ngx_http_telehealth_module);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    n = 0;

    for (ln = st->busy; ln; ln = ln->next) {
        n++;
    }

    if (n > NGX_HTTP_TELEHEALTH_CONSOLE_BUSY_MAX) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: console client does not read, closed");
        return NGX_ERROR;
    }

    if (rc == NGX_AGAIN) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (!r->connection->write->timer_set) {
            ngx_add_timer(r->connection->write, clcf->send_timeout);
        }

        if (ngx_handle_write_event(r->connection->write, clcf->send_lowat)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_console_write(ngx_http_request_t *r)
{
    ngx_event_t                          *wev;
    ngx_http_telehealth_ctx_t            *ctx;
    ngx_http_telehealth_console_stream_t *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    st = ctx->data;
    wev = r->connection->write;

    if (wev->timedout) {
        r->connection->timedout = 1;
        ngx_http_telehealth_console_close(st, NGX_ERROR);
        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (ngx_http_telehealth_console_send(st, NULL) != NGX_OK) {
        ngx_http_telehealth_console_close(st, NGX_ERROR);
    }
}


/* heartbeat, token expiry, revocation, and a replay that must run again */

static void
ngx_http_telehealth_console_heartbeat(ngx_event_t *ev)
{
    const char                           *argv[3];
    size_t                                argvlen[3];
    ngx_chain_t                          *cl;
    ngx_connection_t                     *c;
    ngx_http_request_t                   *r;
    ngx_http_telehealth_console_stream_t *st = ev->data;

    r = st->request;
    c = r->connection;

    if (ngx_exiting || ngx_terminate) {
        ngx_http_telehealth_console_end(st, "shutdown");
        goto done;
    }

    if (st->caller->exp <= ngx_time()) {
        ngx_http_telehealth_console_end(st, "expired");
        goto done;
    }

    cl = ngx_http_telehealth_console_buf(st, sizeof(":\n\n"));
    if (cl == NULL) {
        ngx_http_telehealth_console_close(st, NGX_ERROR);
        goto done;
    }

    cl->buf->last = ngx_cpymem(cl->buf->last, ":\n\n", 3);

    if (ngx_http_telehealth_console_send(st, cl) != NGX_OK) {
        ngx_http_telehealth_console_close(st, NGX_ERROR);
        goto done;
    }

    if (st->retry && !st->replaying) {
        ngx_http_telehealth_console_replay(st);
    }

    ngx_http_telehealth_console_arm(st);

    /*
     * logout revokes the token, deactivation or a new password every token
     * of the person: the stream must not outlive it.  The command's pool
     * cleanup goes to a pool of the check's own, destroyed with its reply:
     * in the request's pool one would stay for every heartbeat of the
     * stream's life.
     */
    if (!st->checking) {
        st->check = ngx_create_pool(NGX_MIN_POOL_SIZE, c->log);
        if (st->check == NULL) {
            goto done;
        }

        argv[0] = "MGET";
        argvlen[0] = sizeof("MGET") - 1;
        argv[1] = st->revoked;
        argvlen[1] = ngx_strlen(st->revoked);
        argv[2] = st->nbf;
        argvlen[2] = ngx_strlen(st->nbf);

        if (ngx_http_telehealth_redis_command(st->check, c->log,
                ngx_http_telehealth_console_revoked, st, 3, argv, argvlen)
            == NGX_OK)
        {
            st->checking = 1;

        } else {
            ngx_destroy_pool(st->check);
            st->check = NULL;
        }
    }

done:

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_telehealth_console_arm(ngx_http_telehealth_console_stream_t *st)
{
    time_t     left;
    ngx_msec_t delay;

    delay = ngx_http_telehealth_console->heartbeat;
    left = st->caller->exp - ngx_time();

    if (left <= 0) {
        delay = 1;

    } else if ((ngx_msec_t) left * 1000 < delay) {
        delay = (ngx_msec_t) left * 1000;
    }

    ngx_add_timer(&st->timer, delay);
}


static void
ngx_http_telehealth_console_revoked(void *data, redisReply *reply)
{
    redisReply                           *nbf;
    ngx_connection_t                     *c;
    ngx_http_telehealth_console_stream_t *st = data;

    /* the reply has disarmed the command's cleanup: nothing runs */
    st->checking = 0;
    ngx_destroy_pool(st->check);
    st->check = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2 || st->done)
    {
        return;
    }

    nbf = reply->element[1];

    if (reply->element[0]->type == REDIS_REPLY_NIL
        && (nbf->type != REDIS_REPLY_STRING
            || st->caller->iat
                   > (time_t) ngx_atotm((u_char *) nbf->str, nbf->len)))
    {
        return;
    }

    c = st->request->connection;

    ngx_http_telehealth_console_end(st, "revoked");

    ngx_http_run_posted_requests(c);
}


/* a last event saying why, then the end of the response */

static void
ngx_http_telehealth_console_end(ngx_http_telehealth_console_stream_t *st,
    const char                                                       *reason)
{
    ngx_chain_t        *cl;
    ngx_http_request_t *r;

    r = st->request;

    if (st->done) {
        return;
    }

    cl = ngx_http_telehealth_console_buf(st, 64);
    if (cl == NULL) {
        ngx_http_telehealth_console_close(st, NGX_ERROR);
        return;
    }

    cl->buf->last = ngx_sprintf(cl->buf->last,
        "event: end\ndata: {\"reason\":\"%s\"}\n\n", reason);

    if (ngx_http_telehealth_console_send(st, cl) != NGX_OK) {
        ngx_http_telehealth_console_close(st, NGX_ERROR);
        return;
    }

    ngx_http_telehealth_console_unlist(st);

    ngx_http_telehealth_console_close(st,
        ngx_http_send_special(r, NGX_HTTP_LAST));
}


static void
ngx_http_telehealth_console_close(ngx_http_telehealth_console_stream_t *st,
    ngx_int_t                                                           rc)
{
    ngx_http_request_t *r;

    if (st->done) {
        return;
    }

    r = st->request;

    ngx_http_telehealth_console_unlist(st);
    st->done = 1;

    r->write_event_handler = ngx_http_request_empty_handler;

    /* the request's pool, and st with it, may be gone after this */
    ngx_http_telehealth_finalize(r, rc);
}


/* no more events: off the worker's list, timer and idle mark gone */

static void
ngx_http_telehealth_console_unlist(ngx_http_telehealth_console_stream_t *st)
{
    ngx_connection_t *c;

    if (st->listed) {
        ngx_queue_remove(&st->queue);
        st->listed = 0;
    }

    if (st->timer.timer_set) {
        ngx_del_timer(&st->timer);
    }

    if (st->idle) {
        c = st->request->connection;
        c->idle = 0;
        c->read->handler = st->read_handler;
        st->idle = 0;
    }
}


static void
ngx_http_telehealth_console_read(ngx_event_t *rev)
{
    ngx_connection_t                     *c;
    ngx_http_request_t                   *r;
    ngx_event_handler_pt                  handler;
    ngx_http_telehealth_ctx_t            *ctx;
    ngx_http_telehealth_console_stream_t *st;

    c = rev->data;
    r = c->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    st = ctx->data;

    if (c->close) {
        /* a graceful shutdown: the client reconnects to a new worker */
        c->close = 0;
        ngx_http_telehealth_console_end(st, "shutdown");
        ngx_http_run_posted_requests(c);
        return;
    }

    handler = st->read_handler;
    handler(rev);
}


static void
ngx_http_telehealth_console_cleanup(void *data)
{
    ngx_http_telehealth_console_stream_t *st = data;

    ngx_http_telehealth_console_unlist(st);
    st->done = 1;

    /* a check in flight: its reply must not reach st */
    if (st->check != NULL) {
        ngx_destroy_pool(st->check);
        st->check = NULL;
    }
}
