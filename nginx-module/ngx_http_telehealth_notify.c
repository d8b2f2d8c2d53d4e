/*
 * The outbox courier, run by every worker.
 *
 * A round claims up to a batch of due messages in one statement: the rows
 * are picked with FOR UPDATE SKIP LOCKED (workers and nginx instances
 * never pick the same row) and leased through locked_until, so no row lock
 * is held while a provider answers.  A worker that dies mid-round leaves
 * its leases to expire; the messages are then claimed again and sent with
 * the same idempotency key.  Each message then is
 *
 *   skipped   when what it announces no longer holds (the patient joined
 *             the room, the room closed),
 *   sent      when the provider accepted it (2xx),
 *   pending   again with a doubled delay when the provider is down or
 *             answers 408, 429 or 5xx, until telehealth_notify_attempts,
 *   failed    after that, or when the provider refuses it (other 4xx).
 *
 * Recipients and texts are personal data: nothing here logs them.
 *
 * The first worker also starts a round, at most once a second, with
 * th_interpreter_sweep(): interpreter requests nobody accepted within
 * telehealth_interpreter_timeout are closed and their requester e-mailed
 * (a message the claim of a later round picks up).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_telehealth_notify.h"
#include "ngx_http_telehealth_curl.h"
#include "ngx_http_telehealth_pg.h"
#include "ngx_http_telehealth_redis.h"
#include "ngx_http_telehealth_template.h"
#include "ngx_http_telehealth_mail.h"


#define NGX_HTTP_TELEHEALTH_NOTIFY_LEASE 30000 /* ms, beyond the timeout */
#define NGX_HTTP_TELEHEALTH_REASON_LEN   200
#define NGX_HTTP_TELEHEALTH_SWEEP_EVERY  1000 /* ms */


/* the columns of the claim */
enum {
    NGX_HTTP_TELEHEALTH_MSG_ID = 0,
    NGX_HTTP_TELEHEALTH_MSG_CHANNEL,
    NGX_HTTP_TELEHEALTH_MSG_RECIPIENT,
    NGX_HTTP_TELEHEALTH_MSG_TEMPLATE,
    NGX_HTTP_TELEHEALTH_MSG_LANGUAGE,
    NGX_HTTP_TELEHEALTH_MSG_PARAMS,
    NGX_HTTP_TELEHEALTH_MSG_KEY,
    NGX_HTTP_TELEHEALTH_MSG_ATTEMPTS,
    NGX_HTTP_TELEHEALTH_MSG_ROOM,
    NGX_HTTP_TELEHEALTH_MSG_PARTICIPANT,
    NGX_HTTP_TELEHEALTH_MSG_JOINED,
    NGX_HTTP_TELEHEALTH_MSG_CLOSED,
    NGX_HTTP_TELEHEALTH_MSG_SENDER, /* the organisation's own, SMS */
    NGX_HTTP_TELEHEALTH_MSG_COLUMNS
};


typedef struct ngx_http_telehealth_notify_s ngx_http_telehealth_notify_t;


typedef struct {
    ngx_http_telehealth_notify_t   *nt;
    char                           *col[NGX_HTTP_TELEHEALTH_MSG_COLUMNS];
    ngx_uint_t                      attempts;
    ngx_http_telehealth_pg_req_t   *pg;
    ngx_http_telehealth_curl_req_t *http;
    ngx_str_t                       subject; /* rendered, e-mail */
    ngx_str_t                       body;    /* rendered */
    char                            reason[NGX_HTTP_TELEHEALTH_REASON_LEN];
    u_char                          delay[NGX_INT64_LEN + 1];
    const char                     *params[7];
} ngx_http_telehealth_message_t;


struct ngx_http_telehealth_notify_s {
    ngx_http_telehealth_main_conf_t *mcf;
    ngx_log_t                       *log;
    ngx_event_t                      timer;

    ngx_pool_t                   *round; /* NULL between rounds */
    ngx_http_telehealth_pg_req_t *claim;
    ngx_array_t                  *messages;
    ngx_uint_t                    busy; /* messages not recorded */
    ngx_uint_t                    full; /* the batch was full */

    u_char      batch[NGX_INT_T_LEN + 1];
    u_char      lease[NGX_INT64_LEN + 1];
    const char *params[2];

    ngx_msec_t  swept;
    u_char      timeout[NGX_TIME_T_LEN + 1];
    const char *sweep_params[1];

    unsigned exiting : 1;
};


/* $1 batch size, $2 lease in ms */
static const char ngx_http_telehealth_claim_sql[] =
    "SELECT * FROM th_notify_claim($1, $2)";

/*
 * $1 id, $2 attempts (only the holder of this attempt records it),
 * $3 status, $4 reason, $5 the delay of the next attempt in ms,
 * $6 and $7 the rendered body and subject (what was sent), or NULL
 */
static const char ngx_http_telehealth_record_sql[] =
    "SELECT th_notify_record($1, $2, $3, $4, $5, $6, $7)";


/* $1 telehealth_interpreter_timeout in seconds */
static const char ngx_http_telehealth_sweep_sql[] =
    "SELECT th_interpreter_sweep($1::int)";


static void ngx_http_telehealth_notify_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_telehealth_notify_sweep(
    ngx_http_telehealth_notify_t *nt);
static void ngx_http_telehealth_notify_swept(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_notify_claim(ngx_http_telehealth_notify_t *nt);
static void ngx_http_telehealth_notify_schedule(ngx_http_telehealth_notify_t
                                                    *nt,
    ngx_msec_t                                       delay);
static void ngx_http_telehealth_notify_claimed(
    ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_notify_start(ngx_http_telehealth_message_t *m);
static void ngx_http_telehealth_notify_presence(void *data, redisReply *reply);
static void ngx_http_telehealth_notify_deliver(
    ngx_http_telehealth_message_t *m);
static ngx_int_t ngx_http_telehealth_notify_http(ngx_http_telehealth_message_t
                                                     *m,
    ngx_http_telehealth_provider_conf_t              *pc);
static u_char *ngx_http_telehealth_notify_form(ngx_pool_t *pool,
    ngx_http_telehealth_message_t *m, ngx_http_telehealth_provider_conf_t *pc,
    size_t *len);
static u_char *ngx_http_telehealth_notify_json(ngx_pool_t *pool,
    ngx_http_telehealth_message_t *m, ngx_http_telehealth_provider_conf_t *pc,
    size_t *len);
static void ngx_http_telehealth_notify_answered(void *data, CURLcode result,
    long status, const char *error);
static ngx_int_t ngx_http_telehealth_notify_email(
    ngx_http_telehealth_message_t *m);
static void ngx_http_telehealth_notify_mailed(void *data, CURLcode result,
    long status, const char *error);
static void ngx_http_telehealth_notify_retry(ngx_http_telehealth_message_t *m,
    const char *reason);
static void ngx_http_telehealth_notify_record(ngx_http_telehealth_message_t *m,
    const char *status, const char *reason);
static void ngx_http_telehealth_notify_recorded(
    ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_notify_finish(ngx_http_telehealth_message_t *m);
static void ngx_http_telehealth_notify_end_round(
    ngx_http_telehealth_notify_t *nt);


static ngx_http_telehealth_notify_t *ngx_http_telehealth_notify;


ngx_int_t
ngx_http_telehealth_notify_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                 *mcf)
{
    ngx_http_telehealth_notify_t *nt;

    nt = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_notify_t));
    if (nt == NULL) {
        return NGX_ERROR;
    }

    nt->mcf = mcf;
    nt->log = cycle->log;

    ngx_sprintf(nt->batch, "%ui%Z", mcf->notify.batch);
    ngx_sprintf(nt->lease, "%M%Z",
        ngx_max(ngx_max(mcf->sms.timeout, mcf->whatsapp.timeout),
            mcf->email.timeout)
            + NGX_HTTP_TELEHEALTH_NOTIFY_LEASE);

    nt->params[0] = (char *) nt->batch;
    nt->params[1] = (char *) nt->lease;

    ngx_sprintf(nt->timeout, "%T%Z", mcf->notify.interpreter_timeout);
    nt->sweep_params[0] = (char *) nt->timeout;

    nt->timer.handler = ngx_http_telehealth_notify_tick;
    nt->timer.data = nt;
    nt->timer.log = cycle->log;
    nt->timer.cancelable = 1;

    ngx_http_telehealth_notify = nt;

    /* give the PostgreSQL pool a moment to connect */
    ngx_http_telehealth_notify_schedule(nt, mcf->notify.interval);

    return NGX_OK;
}


void
ngx_http_telehealth_notify_exit_process(void)
{
    ngx_uint_t                     i;
    ngx_http_telehealth_message_t *m;
    ngx_http_telehealth_notify_t  *nt;

    nt = ngx_http_telehealth_notify;
    if (nt == NULL) {
        return;
    }

    nt->exiting = 1;

    if (nt->timer.timer_set) {
        ngx_del_timer(&nt->timer);
    }

    if (nt->round != NULL) {
        /* what is under way stays leased and is claimed again later */
        if (nt->messages != NULL) {
            m = nt->messages->elts;

            for (i = 0; i < nt->messages->nelts; i++) {
                if (m[i].http != NULL) {
                    ngx_http_telehealth_curl_cancel(m[i].http);
                    m[i].http = NULL;
                }
            }
        }

        ngx_destroy_pool(nt->round);
        nt->round = NULL;
    }

    ngx_http_telehealth_notify = NULL;
}


static void
ngx_http_telehealth_notify_schedule(ngx_http_telehealth_notify_t *nt,
    ngx_msec_t                                                    delay)
{
    if (nt->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (nt->timer.timer_set) {
        ngx_del_timer(&nt->timer);
    }

    ngx_add_timer(&nt->timer, delay);
}


static void
ngx_http_telehealth_notify_tick(ngx_event_t *ev)
{
    ngx_http_telehealth_notify_t *nt = ev->data;

    if (nt->round != NULL) {
        return;
    }

    nt->round = ngx_create_pool(4096, nt->log);
    if (nt->round == NULL) {
        ngx_http_telehealth_notify_schedule(nt, nt->mcf->notify.interval);
        return;
    }

    nt->messages = NULL;
    nt->busy = 0;
    nt->full = 0;

    if (ngx_http_telehealth_notify_sweep(nt) == NGX_AGAIN) {
        return;
    }

    ngx_http_telehealth_notify_claim(nt);
}


static ngx_int_t
ngx_http_telehealth_notify_sweep(ngx_http_telehealth_notify_t *nt)
{
    ngx_http_telehealth_pg_req_t *pg;

    if (ngx_worker != 0
        || ngx_current_msec - nt->swept < NGX_HTTP_TELEHEALTH_SWEEP_EVERY)
    {
        return NGX_DECLINED;
    }

    nt->swept = ngx_current_msec;

    pg = ngx_http_telehealth_pg_create(nt->round, nt->log);
    if (pg == NULL) {
        return NGX_ERROR;
    }

    pg->handler = ngx_http_telehealth_notify_swept;
    pg->data = nt;

    return ngx_http_telehealth_pg_query(pg, ngx_http_telehealth_sweep_sql, 1,
        nt->sweep_params);
}


static void
ngx_http_telehealth_notify_swept(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_telehealth_notify_t *nt = pg->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_log_error(NGX_LOG_WARN, nt->log, 0,
            "telehealth: the interpreter request sweep failed");
    }

    ngx_http_telehealth_notify_claim(nt);
}


static void
ngx_http_telehealth_notify_claim(ngx_http_telehealth_notify_t *nt)
{
    nt->claim = ngx_http_telehealth_pg_create(nt->round, nt->log);
    if (nt->claim == NULL) {
        ngx_http_telehealth_notify_end_round(nt);
        return;
    }

    nt->claim->handler = ngx_http_telehealth_notify_claimed;
    nt->claim->data = nt;

    if (ngx_http_telehealth_pg_query(nt->claim, ngx_http_telehealth_claim_sql,
            2, nt->params)
        != NGX_AGAIN)
    {
        /* PostgreSQL is down: the messages wait there */
        ngx_http_telehealth_notify_end_round(nt);
    }
}


static void
ngx_http_telehealth_notify_claimed(ngx_http_telehealth_pg_req_t *pg)
{
    int                            rows, row, col;
    size_t                         len;
    ngx_uint_t                     i, n;
    ngx_http_telehealth_notify_t  *nt = pg->data;
    ngx_http_telehealth_message_t *m;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_notify_end_round(nt);
        return;
    }

    rows = PQntuples(pg->result);

    if (rows == 0) {
        ngx_http_telehealth_notify_end_round(nt);
        return;
    }

    nt->full = ((ngx_uint_t) rows >= nt->mcf->notify.batch);

    nt->messages = ngx_array_create(nt->round, rows,
        sizeof(ngx_http_telehealth_message_t));
    if (nt->messages == NULL) {
        ngx_http_telehealth_notify_end_round(nt);
        return;
    }

    for (row = 0; row < rows; row++) {
        m = ngx_array_push(nt->messages);
        ngx_memzero(m, sizeof(ngx_http_telehealth_message_t));
        m->nt = nt;

        for (col = 0; col < NGX_HTTP_TELEHEALTH_MSG_COLUMNS; col++) {
            if (PQgetisnull(pg->result, row, col)) {
                continue;
            }

            len = PQgetlength(pg->result, row, col);

            m->col[col] = ngx_pnalloc(nt->round, len + 1);
            if (m->col[col] == NULL) {
                nt->messages->nelts--;
                ngx_http_telehealth_notify_end_round(nt);
                return;
            }

            ngx_memcpy(m->col[col], PQgetvalue(pg->result, row, col), len + 1);
        }

        col = NGX_HTTP_TELEHEALTH_MSG_ATTEMPTS;
        m->attempts = ngx_atoi((u_char *) m->col[col], ngx_strlen(m->col[col]));
    }

    ngx_http_telehealth_pg_release(pg);

    n = nt->messages->nelts;
    nt->busy = n;

    /*
     * A message may be done at once; the last one ends the round and
     * frees the array, so nothing is read from it after that.
     */
    m = nt->messages->elts;

    for (i = 0; i < n; i++) {
        ngx_http_telehealth_notify_start(&m[i]);
    }
}


static void
ngx_http_telehealth_notify_start(ngx_http_telehealth_message_t *m)
{
    char                         *key;
    const char                   *argv[3];
    size_t                        argvlen[3];
    ngx_http_telehealth_notify_t *nt = m->nt;

    if (m->col[NGX_HTTP_TELEHEALTH_MSG_ROOM] == NULL) {
        ngx_http_telehealth_notify_deliver(m);
        return;
    }

    if (*m->col[NGX_HTTP_TELEHEALTH_MSG_JOINED] == 't') {
        ngx_http_telehealth_notify_record(m, "skipped", "joined");
        return;
    }

    if (*m->col[NGX_HTTP_TELEHEALTH_MSG_CLOSED] == 't') {
        ngx_http_telehealth_notify_record(m, "skipped", "room_closed");
        return;
    }

    /* the call history lags the room: ask the room itself too */
    key = ngx_http_telehealth_redis_key(nt->round, TH_KEY_ROOM_MEMBERS,
        m->col[NGX_HTTP_TELEHEALTH_MSG_ROOM]);
    if (key == NULL) {
        ngx_http_telehealth_notify_retry(m, "out of memory");
        return;
    }

    argv[0] = "HEXISTS";
    argv[1] = key;
    argv[2] = m->col[NGX_HTTP_TELEHEALTH_MSG_PARTICIPANT];

    argvlen[0] = sizeof("HEXISTS") - 1;
    argvlen[1] = ngx_strlen(argv[1]);
    argvlen[2] = ngx_strlen(argv[2]);

    if (ngx_http_telehealth_redis_command(nt->round, nt->log,
            ngx_http_telehealth_notify_presence, m, 3, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_notify_retry(m, "redis unavailable");
    }
}


static void
ngx_http_telehealth_notify_presence(void *data, redisReply *reply)
{
    ngx_http_telehealth_message_t *m = data;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        ngx_http_telehealth_notify_retry(m, "redis unavailable");
        return;
    }

    if (reply->integer == 1) {
        ngx_http_telehealth_notify_record(m, "skipped", "joined");
        return;
    }

    ngx_http_telehealth_notify_deliver(m);
}


static void
ngx_http_telehealth_notify_deliver(ngx_http_telehealth_message_t *m)
{
    char                                *channel;
    ngx_int_t                            rc;
    ngx_http_telehealth_notify_t        *nt = m->nt;
    ngx_http_telehealth_provider_conf_t *pc;

    char reason[NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN];

    channel = m->col[NGX_HTTP_TELEHEALTH_MSG_CHANNEL];

    /* never a half-filled text: a message that cannot be rendered fails */
    rc = ngx_http_telehealth_template_render(nt->round, &nt->mcf->templates,
        m->col[NGX_HTTP_TELEHEALTH_MSG_TEMPLATE], channel,
        m->col[NGX_HTTP_TELEHEALTH_MSG_LANGUAGE],
        m->col[NGX_HTTP_TELEHEALTH_MSG_PARAMS], &m->subject, &m->body, reason);

    if (rc == NGX_AGAIN) {
        ngx_http_telehealth_notify_retry(m, reason);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_telehealth_notify_record(m, "failed", reason);
        return;
    }

    if (ngx_strcmp(channel, "email") == 0) {
        if (nt->mcf->email.url.len == 0) {
            ngx_http_telehealth_notify_retry(m, "no e-mail server configured");
            return;
        }

        if (ngx_http_telehealth_mail_address(
                m->col[NGX_HTTP_TELEHEALTH_MSG_RECIPIENT])
            != NGX_OK)
        {
            ngx_http_telehealth_notify_record(m, "failed",
                "not an e-mail address");
            return;
        }

        if (ngx_http_telehealth_notify_email(m) != NGX_OK) {
            ngx_http_telehealth_notify_retry(m, "request not started");
        }

        return;
    }

    if (ngx_strcmp(channel, "sms") == 0) {
        pc = &nt->mcf->sms;

    } else if (ngx_strcmp(channel, "whatsapp") == 0) {
        pc = &nt->mcf->whatsapp;

    } else {
        ngx_http_telehealth_notify_record(m, "failed", "unknown channel");
        return;
    }

    if (pc->url.len == 0) {
        ngx_sprintf((u_char *) reason, "no %s provider configured%Z", channel);
        ngx_http_telehealth_notify_retry(m, reason);
        return;
    }

    if (ngx_http_telehealth_notify_http(m, pc) != NGX_OK) {
        ngx_http_telehealth_notify_retry(m, "request not started");
    }
}


/* SMS and WhatsApp: one POST to the provider's HTTP API */

static ngx_int_t
ngx_http_telehealth_notify_http(ngx_http_telehealth_message_t *m,
    ngx_http_telehealth_provider_conf_t                       *pc)
{
    u_char            *body, *key, *auth;
    size_t             len;
    ngx_pool_t        *pool;
    struct curl_slist *headers;

    pool = m->nt->round;

    if (pc->format == NGX_HTTP_TELEHEALTH_PROVIDER_JSON) {
        body = ngx_http_telehealth_notify_json(pool, m, pc, &len);

    } else {
        body = ngx_http_telehealth_notify_form(pool, m, pc, &len);
    }

    if (body == NULL) {
        return NGX_ERROR;
    }

    key = ngx_pnalloc(pool,
        sizeof("Idempotency-Key: ")
            + ngx_strlen(m->col[NGX_HTTP_TELEHEALTH_MSG_KEY]));
    auth = ngx_pnalloc(pool, sizeof("Authorization: ") + pc->auth.len);

    if (key == NULL || auth == NULL) {
        return NGX_ERROR;
    }

    /* the provider drops a repeat of the same message */
    ngx_sprintf(key, "Idempotency-Key: %s%Z",
        m->col[NGX_HTTP_TELEHEALTH_MSG_KEY]);
    ngx_sprintf(auth, "Authorization: %V%Z", &pc->auth);

    headers = curl_slist_append(NULL,
        pc->format == NGX_HTTP_TELEHEALTH_PROVIDER_JSON
            ? "Content-Type: application/json"
            : "Content-Type: application/x-www-form-urlencoded");
    if (headers == NULL) {
        return NGX_ERROR;
    }

    /* no "100 Continue" round trip */
    if (curl_slist_append(headers, "Expect:") == NULL
        || curl_slist_append(headers, (char *) key) == NULL
        || (pc->auth.len && curl_slist_append(headers, (char *) auth) == NULL))
    {
        curl_slist_free_all(headers);
        return NGX_ERROR;
    }

    /* the list is the request's now, in every case */
    m->http = ngx_http_telehealth_curl_post(m->nt->log, (char *) pc->url.data,
        headers, body, len, pc->timeout, ngx_http_telehealth_notify_answered,
        m);

    return m->http ? NGX_OK : NGX_ERROR;
}


/* application/x-www-form-urlencoded: unreserved characters stay */

static u_char *
ngx_http_telehealth_notify_escape(u_char *dst, const char *src)
{
    static u_char hex[] = "0123456789ABCDEF";

    u_char c;

    while (*src) {
        c = (u_char) *src++;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            *dst++ = c;
            continue;
        }

        *dst++ = '%';
        *dst++ = hex[c >> 4];
        *dst++ = hex[c & 0xf];
    }

    return dst;
}


/*
 * The sender of a message: the organisation's own (PATCH /organisation
 * "sms_sender") in the provider's telehealth_sms_sender_field, which
 * takes the place of a telehealth_sms_param of that name; NULL: the
 * directives' fields alone.
 */

static const char *
ngx_http_telehealth_notify_sender(ngx_http_telehealth_message_t *m,
    ngx_http_telehealth_provider_conf_t                         *pc)
{
    if (pc->sender_field.len == 0
        || m->col[NGX_HTTP_TELEHEALTH_MSG_SENDER] == NULL
        || *m->col[NGX_HTTP_TELEHEALTH_MSG_SENDER] == '\0')
    {
        return NULL;
    }

    return m->col[NGX_HTTP_TELEHEALTH_MSG_SENDER];
}


static ngx_uint_t
ngx_http_telehealth_notify_is_sender(ngx_str_t *name,
    ngx_http_telehealth_provider_conf_t        *pc)
{
    return name->len == pc->sender_field.len
           && ngx_strncmp(name->data, pc->sender_field.data, name->len) == 0;
}


static u_char *
ngx_http_telehealth_notify_form(ngx_pool_t *pool,
    ngx_http_telehealth_message_t *m, ngx_http_telehealth_provider_conf_t *pc,
    size_t *len)
{
    u_char       *body, *p;
    size_t        n;
    ngx_uint_t    i;
    const char   *sender;
    ngx_keyval_t *kv;

    sender = ngx_http_telehealth_notify_sender(m, pc);

    n = pc->to_field.len + pc->text_field.len + 2
        + ngx_strlen(m->col[NGX_HTTP_TELEHEALTH_MSG_RECIPIENT]) + m->body.len;

    if (sender != NULL) {
        n += pc->sender_field.len + ngx_strlen(sender) + 2;
    }

    kv = NULL;

    if (pc->params != NULL) {
        kv = pc->params->elts;

        for (i = 0; i < pc->params->nelts; i++) {
            n += kv[i].key.len + kv[i].value.len + 2;
        }
    }

    /* every byte may become three */
    body = ngx_pnalloc(pool, 3 * n + 1);
    if (body == NULL) {
        return NULL;
    }

    p = ngx_http_telehealth_notify_escape(body, (char *) pc->to_field.data);
    *p++ = '=';
    p = ngx_http_telehealth_notify_escape(p,
        m->col[NGX_HTTP_TELEHEALTH_MSG_RECIPIENT]);
    *p++ = '&';
    p = ngx_http_telehealth_notify_escape(p, (char *) pc->text_field.data);
    *p++ = '=';
    p = ngx_http_telehealth_notify_escape(p, (char *) m->body.data);

    if (sender != NULL) {
        *p++ = '&';
        p = ngx_http_telehealth_notify_escape(p,
            (char *) pc->sender_field.data);
        *p++ = '=';
        p = ngx_http_telehealth_notify_escape(p, sender);
    }

    if (kv != NULL) {
        for (i = 0; i < pc->params->nelts; i++) {
            if (sender != NULL
                && ngx_http_telehealth_notify_is_sender(&kv[i].key, pc))
            {
                continue;
            }

            *p++ = '&';
            p = ngx_http_telehealth_notify_escape(p, (char *) kv[i].key.data);
            *p++ = '=';
            p = ngx_http_telehealth_notify_escape(p, (char *) kv[i].value.data);
        }
    }

    *p = '\0';
    *len = p - body;

    return body;
}


static u_char *
ngx_http_telehealth_notify_json(ngx_pool_t *pool,
    ngx_http_telehealth_message_t *m, ngx_http_telehealth_provider_conf_t *pc,
    size_t *len)
{
    char         *text;
    u_char       *body;
    json_t       *o;
    ngx_uint_t    i;
    const char   *sender;
    ngx_keyval_t *kv;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    if (pc->params != NULL) {
        kv = pc->params->elts;

        for (i = 0; i < pc->params->nelts; i++) {
            if (json_object_set_new(o, (char *) kv[i].key.data,
                    json_string((char *) kv[i].value.data))
                != 0)
            {
                json_decref(o);
                return NULL;
            }
        }
    }

    sender = ngx_http_telehealth_notify_sender(m, pc);

    /* the organisation's own sender instead of the directive's */
    if (sender != NULL
        && json_object_set_new(o, (char *) pc->sender_field.data,
               json_string(sender))
               != 0)
    {
        json_decref(o);
        return NULL;
    }

    if (json_object_set_new(o, (char *) pc->to_field.data,
            json_string(m->col[NGX_HTTP_TELEHEALTH_MSG_RECIPIENT]))
            != 0
        || json_object_set_new(o, (char *) pc->text_field.data,
               json_string((char *) m->body.data))
               != 0)
    {
        json_decref(o);
        return NULL;
    }

    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);

    if (text == NULL) {
        return NULL;
    }

    *len = ngx_strlen(text);

    body = ngx_pnalloc(pool, *len + 1);
    if (body != NULL) {
        ngx_memcpy(body, text, *len + 1);
    }

    free(text);

    return body;
}


static void
ngx_http_telehealth_notify_answered(void *data, CURLcode result, long status,
    const char *error)
{
    ngx_http_telehealth_message_t *m = data;

    char reason[NGX_HTTP_TELEHEALTH_REASON_LEN];

    m->http = NULL;

    if (result != CURLE_OK) {
        ngx_snprintf((u_char *) reason, sizeof(reason) - 1, "%s%Z", error);
        reason[sizeof(reason) - 1] = '\0';
        ngx_http_telehealth_notify_retry(m, reason);
        return;
    }

    if (status >= 200 && status < 300) {
        ngx_http_telehealth_notify_record(m, "sent", "");
        return;
    }

    ngx_sprintf((u_char *) reason, "provider answered HTTP %l%Z", status);

    if (status == 408 || status == 425 || status == 429 || status >= 500) {
        ngx_http_telehealth_notify_retry(m, reason);
        return;
    }

    /* refused for good: a retry would be refused the same way */
    ngx_http_telehealth_notify_record(m, "failed", reason);
}


static ngx_int_t
ngx_http_telehealth_notify_email(ngx_http_telehealth_message_t *m)
{
    u_char                           *msg;
    size_t                            len;
    ngx_http_telehealth_curl_mail_t   mail;
    ngx_http_telehealth_email_conf_t *ec;

    ec = &m->nt->mcf->email;

    msg = ngx_http_telehealth_mail_message(m->nt->round, ec,
        m->col[NGX_HTTP_TELEHEALTH_MSG_RECIPIENT], &m->subject, &m->body,
        m->col[NGX_HTTP_TELEHEALTH_MSG_KEY], &len);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    mail.url = (char *) ec->url.data;
    mail.use_ssl = (ec->starttls == NGX_HTTP_TELEHEALTH_STARTTLS_REQUIRED)
                       ? CURLUSESSL_ALL
                   : (ec->starttls == NGX_HTTP_TELEHEALTH_STARTTLS_OPTIONAL)
                       ? CURLUSESSL_TRY
                       : CURLUSESSL_NONE;
    mail.user = ec->user.len ? (char *) ec->user.data : NULL;
    mail.password = (char *) ec->password.data;
    mail.from = (char *) ec->from.data;
    mail.to = m->col[NGX_HTTP_TELEHEALTH_MSG_RECIPIENT];
    mail.trusted = ec->trusted.len ? &ec->trusted : NULL;
    mail.timeout = ec->timeout;

    m->http = ngx_http_telehealth_curl_mail(m->nt->log, &mail, msg, len,
        ngx_http_telehealth_notify_mailed, m);

    return m->http ? NGX_OK : NGX_ERROR;
}


/* a 5xx reply refuses for good; 4xx and no reply at all are retried */

static void
ngx_http_telehealth_notify_mailed(void *data, CURLcode result, long status,
    const char *error)
{
    ngx_http_telehealth_message_t *m = data;

    char reason[NGX_HTTP_TELEHEALTH_REASON_LEN];

    m->http = NULL;

    if (result == CURLE_OK) {
        ngx_http_telehealth_notify_record(m, "sent", "");
        return;
    }

    if (status >= 100) {
        ngx_snprintf((u_char *) reason, sizeof(reason) - 1,
            "SMTP server answered %l: %s%Z", status, error);

    } else {
        ngx_snprintf((u_char *) reason, sizeof(reason) - 1, "%s%Z", error);
    }

    reason[sizeof(reason) - 1] = '\0';

    if (status >= 500 && status < 600) {
        ngx_http_telehealth_notify_record(m, "failed", reason);
        return;
    }

    ngx_http_telehealth_notify_retry(m, reason);
}


/* pending again after a delay that doubles, or failed when it was the last */

static void
ngx_http_telehealth_notify_retry(ngx_http_telehealth_message_t *m,
    const char                                                 *reason)
{
    ngx_uint_t                         i;
    ngx_msec_t                         delay;
    ngx_http_telehealth_notify_conf_t *conf;

    conf = &m->nt->mcf->notify;

    if (m->attempts == (ngx_uint_t) NGX_ERROR || m->attempts >= conf->attempts)
    {
        ngx_http_telehealth_notify_record(m, "failed", reason);
        return;
    }

    delay = conf->backoff;

    for (i = 1; i < m->attempts && delay < conf->backoff_max; i++) {
        delay *= 2;
    }

    delay = ngx_min(delay, conf->backoff_max);

    ngx_sprintf(m->delay, "%M%Z", delay);

    ngx_http_telehealth_notify_record(m, "pending", reason);
}


static void
ngx_http_telehealth_notify_record(ngx_http_telehealth_message_t *m,
    const char *status, const char *reason)
{
    ngx_uint_t                    level;
    ngx_http_telehealth_notify_t *nt = m->nt;

    ngx_cpystrn((u_char *) m->reason, (u_char *) reason, sizeof(m->reason));

    if (m->delay[0] == '\0') {
        ngx_sprintf(m->delay, "0%Z");
    }

    m->params[0] = m->col[NGX_HTTP_TELEHEALTH_MSG_ID];
    m->params[1] = m->col[NGX_HTTP_TELEHEALTH_MSG_ATTEMPTS];
    m->params[2] = status;
    m->params[3] = m->reason;
    m->params[4] = (char *) m->delay;
    m->params[5] = (char *) m->body.data;
    m->params[6] = (char *) m->subject.data;

    level = (ngx_strcmp(status, "pending") == 0) ? NGX_LOG_WARN : NGX_LOG_INFO;

    ngx_log_error(level, nt->log, 0,
        "telehealth: notification %s attempt %s: %s%s%s", m->params[0],
        m->params[1], status, reason[0] ? ", " : "", reason);

    m->pg = ngx_http_telehealth_pg_create(nt->round, nt->log);
    if (m->pg == NULL) {
        ngx_http_telehealth_notify_finish(m);
        return;
    }

    m->pg->handler = ngx_http_telehealth_notify_recorded;
    m->pg->data = m;

    if (ngx_http_telehealth_pg_query(m->pg, ngx_http_telehealth_record_sql, 7,
            m->params)
        != NGX_AGAIN)
    {
        /* the lease runs out and the message is claimed again */
        ngx_http_telehealth_notify_finish(m);
    }
}


static void
ngx_http_telehealth_notify_recorded(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_telehealth_message_t *m = pg->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_log_error(NGX_LOG_WARN, m->nt->log, 0,
            "telehealth: notification %s: outcome not recorded, "
            "it is claimed again when its lease ends",
            m->col[NGX_HTTP_TELEHEALTH_MSG_ID]);
    }

    ngx_http_telehealth_pg_release(pg);

    ngx_http_telehealth_notify_finish(m);
}


static void
ngx_http_telehealth_notify_finish(ngx_http_telehealth_message_t *m)
{
    ngx_http_telehealth_notify_t *nt = m->nt;

    if (--nt->busy == 0) {
        ngx_http_telehealth_notify_end_round(nt);
    }
}


static void
ngx_http_telehealth_notify_end_round(ngx_http_telehealth_notify_t *nt)
{
    ngx_uint_t full;

    full = nt->full;

    if (nt->round != NULL) {
        /* the pool's cleanups release the PostgreSQL requests */
        ngx_destroy_pool(nt->round);
        nt->round = NULL;
    }

    nt->messages = NULL;
    nt->claim = NULL;

    /* a full batch: more may be due right now */
    ngx_http_telehealth_notify_schedule(nt,
        full ? 1 : nt->mcf->notify.interval);
}


/* telehealth_notify_retry first [max]: the back-off doubles up to max */

char *
ngx_http_telehealth_notify_set_retry(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    ngx_str_t *value;
    ngx_msec_t first, max;

    if (mcf->notify.backoff != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    first = ngx_parse_time(&value[1], 0);
    if (first == (ngx_msec_t) NGX_ERROR || first == 0) {
        return "has an invalid first delay";
    }

    max = 15 * 60 * 1000;

    if (cf->args->nelts == 3) {
        max = ngx_parse_time(&value[2], 0);
        if (max == (ngx_msec_t) NGX_ERROR) {
            return "has an invalid maximum delay";
        }
    }

    if (max < first) {
        return "has a maximum below the first delay";
    }

    mcf->notify.backoff = first;
    mcf->notify.backoff_max = max;

    return NGX_CONF_OK;
}


void
ngx_http_telehealth_provider_create(ngx_http_telehealth_provider_conf_t *pc)
{
    pc->format = NGX_CONF_UNSET_UINT;
    pc->params = NGX_CONF_UNSET_PTR;
    pc->timeout = NGX_CONF_UNSET_MSEC;
}


void
ngx_http_telehealth_provider_init(ngx_http_telehealth_provider_conf_t *pc)
{
    ngx_conf_init_uint_value(pc->format, NGX_HTTP_TELEHEALTH_PROVIDER_FORM);
    ngx_conf_init_ptr_value(pc->params, NULL);
    ngx_conf_init_msec_value(pc->timeout, 10000);

    if (pc->to_field.data == NULL) {
        ngx_str_set(&pc->to_field, "to");
    }

    if (pc->text_field.data == NULL) {
        ngx_str_set(&pc->text_field, "text");
    }
}


/*
 * telehealth_sms_url, telehealth_whatsapp_url, telehealth_email_url: a URL
 * of one of the schemes in cmd->post
 */

char *
ngx_http_telehealth_provider_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t *url, *value, *scheme;

    url = (ngx_str_t *) ((char *) conf + cmd->offset);

    if (url->data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (scheme = cmd->post; scheme->len; scheme++) {
        if (value[1].len > scheme->len
            && ngx_strncasecmp(value[1].data, scheme->data, scheme->len) == 0)
        {
            /* arguments are NUL-terminated: libcurl takes them as they are */
            *url = value[1];
            return NGX_CONF_OK;
        }
    }

    scheme = cmd->post;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
        "\"%V\" must be an %V or %V URL, not \"%V\"", &cmd->name, &scheme[0],
        &scheme[1], &value[1]);

    return NGX_CONF_ERROR;
}
