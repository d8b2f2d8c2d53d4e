/*
 * PostgreSQL without blocking the worker: libpq's asynchronous API on
 * sockets registered with the event loop, a fixed number of connections
 * per worker, a wait queue when all are busy, a timer per query, and
 * reconnects with back-off.  While PostgreSQL is down and no connection is
 * up, queries are refused at once (the caller answers 503) instead of
 * queueing requests that cannot succeed.
 *
 * One more connection, outside the pool, may LISTEN on a channel: it is
 * driven the same way, never runs a caller's query, and after each
 * (re)connect tells its owner that it listens again so that the owner can
 * catch up on what it missed meanwhile.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <openssl/rand.h>

#include "ngx_http_telehealth_pg.h"
#include "ngx_http_telehealth_metrics.h"
#include "ngx_http_telehealth_conn.h"


#define NGX_HTTP_TELEHEALTH_PG_BACKOFF_MIN 100
#define NGX_HTTP_TELEHEALTH_PG_BACKOFF_MAX 2000


typedef enum {
    NGX_HTTP_TELEHEALTH_PG_CLOSED = 0, /* waiting to reconnect */
    NGX_HTTP_TELEHEALTH_PG_CONNECTING,
    NGX_HTTP_TELEHEALTH_PG_IDLE,
    NGX_HTTP_TELEHEALTH_PG_HELD, /* kept by a request, no query */
    NGX_HTTP_TELEHEALTH_PG_BUSY  /* a query runs */
} ngx_http_telehealth_pg_state_e;


struct ngx_http_telehealth_pg_conn_s {
    PGconn                        *pg;
    ngx_connection_t              *c;
    ngx_http_telehealth_pg_req_t  *req; /* NULL: idle or orphaned */
    ngx_http_telehealth_pg_state_e state;
    ngx_event_t                    timer; /* reconnect or timeout */
    ngx_msec_t                     backoff;
    ino_t                          sock_ino; /* of pg's socket */
    unsigned                       flushing : 1;
    unsigned                       listener : 1;
    unsigned                       listening : 1;
    unsigned                       failed : 1; /* listener's last try */
};


typedef struct {
    ngx_http_telehealth_pg_conn_t *conns;
    ngx_uint_t                     nconns;
    ngx_uint_t                     nconnected;
    ngx_uint_t                     failed; /* last connect failed */
    ngx_queue_t                    waiting;
    ngx_event_t                    dispatch;
    ngx_msec_t                     timeout;
    ngx_log_t                     *log;
    char                          *conninfo;

    ngx_http_telehealth_pg_conn_t      *listener;
    const char                         *listen_sql;
    ngx_http_telehealth_pg_notify_pt    notify;
    ngx_http_telehealth_pg_listening_pt listening;
} ngx_http_telehealth_pg_pool_t;


static void ngx_http_telehealth_pg_connect(ngx_http_telehealth_pg_conn_t *pc);
static void ngx_http_telehealth_pg_finish(ngx_http_telehealth_pg_conn_t *pc);
static ngx_uint_t ngx_http_telehealth_pg_failing(
    ngx_http_telehealth_pg_conn_t *pc);
static ino_t ngx_http_telehealth_pg_socket_ino(ngx_socket_t fd);
static void ngx_http_telehealth_pg_connect_poll(
    ngx_http_telehealth_pg_conn_t *pc);
static ngx_int_t ngx_http_telehealth_pg_register(
    ngx_http_telehealth_pg_conn_t *pc);
static void ngx_http_telehealth_pg_unregister(
    ngx_http_telehealth_pg_conn_t *pc);
static void ngx_http_telehealth_pg_want_write(ngx_http_telehealth_pg_conn_t *pc,
    ngx_uint_t want);
static void ngx_http_telehealth_pg_close(ngx_http_telehealth_pg_conn_t *pc,
    ngx_uint_t                                                          failed);
static void ngx_http_telehealth_pg_event_handler(ngx_event_t *ev);
static void ngx_http_telehealth_pg_timer_handler(ngx_event_t *ev);
static void ngx_http_telehealth_pg_read_results(
    ngx_http_telehealth_pg_conn_t *pc);
static void ngx_http_telehealth_pg_done(ngx_http_telehealth_pg_conn_t *pc);
static void ngx_http_telehealth_pg_free(ngx_http_telehealth_pg_conn_t *pc);
static void ngx_http_telehealth_pg_listen_started(
    ngx_http_telehealth_pg_conn_t *pc);
static ngx_int_t ngx_http_telehealth_pg_send(ngx_http_telehealth_pg_conn_t *pc,
    ngx_http_telehealth_pg_req_t *req, const char *sql, int nparams,
    const char *const *params);
static void ngx_http_telehealth_pg_dispatch(ngx_event_t *ev);
static void ngx_http_telehealth_pg_req_timeout(ngx_event_t *ev);
static void ngx_http_telehealth_pg_cleanup(void *data);
static void ngx_http_telehealth_pg_notice(void *arg, const char *message);
static ngx_uint_t ngx_http_telehealth_pg_lost(PGresult *res);
static char *ngx_http_telehealth_pg_conninfo(ngx_pool_t *pool,
    ngx_str_t *conninfo, ngx_msec_t timeout);


static ngx_http_telehealth_pg_pool_t *ngx_http_telehealth_pg_pool;


ngx_int_t
ngx_http_telehealth_pg_init_process(ngx_cycle_t *cycle, ngx_str_t *conninfo,
    ngx_uint_t size, ngx_msec_t timeout)
{
    ngx_uint_t                     i;
    ngx_http_telehealth_pg_conn_t *pc;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_pg_pool_t));
    if (pool == NULL) {
        return NGX_ERROR;
    }

    pool->conns =
        ngx_pcalloc(cycle->pool, size * sizeof(ngx_http_telehealth_pg_conn_t));
    if (pool->conns == NULL) {
        return NGX_ERROR;
    }

    pool->conninfo =
        ngx_http_telehealth_pg_conninfo(cycle->pool, conninfo, timeout);
    if (pool->conninfo == NULL) {
        return NGX_ERROR;
    }

    pool->nconns = size;
    pool->timeout = timeout;
    pool->log = cycle->log;
    ngx_queue_init(&pool->waiting);

    pool->dispatch.handler = ngx_http_telehealth_pg_dispatch;
    pool->dispatch.data = pool;
    pool->dispatch.log = cycle->log;

    ngx_http_telehealth_pg_pool = pool;

    for (i = 0; i < size; i++) {
        pc = &pool->conns[i];
        pc->timer.handler = ngx_http_telehealth_pg_timer_handler;
        pc->timer.data = pc;
        pc->timer.log = cycle->log;
        pc->timer.cancelable = 1;
        pc->backoff = NGX_HTTP_TELEHEALTH_PG_BACKOFF_MIN;

        ngx_http_telehealth_pg_connect(pc);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_telehealth_pg_listen(ngx_cycle_t *cycle, const char *sql,
    ngx_http_telehealth_pg_notify_pt    notify,
    ngx_http_telehealth_pg_listening_pt listening)
{
    ngx_http_telehealth_pg_conn_t *pc;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;

    if (pool == NULL || pool->listener != NULL) {
        return NGX_ERROR;
    }

    pc = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_pg_conn_t));
    if (pc == NULL) {
        return NGX_ERROR;
    }

    pc->listener = 1;
    pc->timer.handler = ngx_http_telehealth_pg_timer_handler;
    pc->timer.data = pc;
    pc->timer.log = cycle->log;
    pc->timer.cancelable = 1;
    pc->backoff = NGX_HTTP_TELEHEALTH_PG_BACKOFF_MIN;

    pool->listener = pc;
    pool->listen_sql = sql;
    pool->notify = notify;
    pool->listening = listening;

    ngx_http_telehealth_pg_connect(pc);

    return NGX_OK;
}


ngx_uint_t
ngx_http_telehealth_pg_listening(void)
{
    return ngx_http_telehealth_pg_pool != NULL
           && ngx_http_telehealth_pg_pool->listener != NULL
           && ngx_http_telehealth_pg_pool->listener->listening;
}


/* LISTEN has completed: from now on nothing committed goes unheard */

static void
ngx_http_telehealth_pg_listen_started(ngx_http_telehealth_pg_conn_t *pc)
{
    PGnotify                      *notify;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;

    pc->listening = 1;

    ngx_log_error(NGX_LOG_INFO, pool->log, 0, "telehealth: PostgreSQL: %s",
        pool->listen_sql);

    if (pool->listening != NULL) {
        pool->listening();
    }

    while ((notify = PQnotifies(pc->pg)) != NULL) {
        if (pool->notify != NULL) {
            pool->notify(notify->extra);
        }

        PQfreemem(notify);
    }
}


/*
 * A query the worker gave up on must not commit later.  PostgreSQL ends
 * every statement a little before telehealth_timeout (statement_timeout,
 * lock waits included), so the worker hears the cancellation as an error
 * and answers 503, and the statement's work is rolled back.  A conninfo
 * that sets "options" itself is left alone.
 */

static char *
ngx_http_telehealth_pg_conninfo(ngx_pool_t *pool, ngx_str_t *conninfo,
    ngx_msec_t timeout)
{
    u_char    *p, *last;
    size_t     len;
    ngx_msec_t margin;
    ngx_uint_t uri;

    margin = ngx_max(timeout / 10, 100);
    timeout = (timeout > margin) ? timeout - margin : 1;

    uri = (ngx_strncmp(conninfo->data, "postgres://", 11) == 0
           || ngx_strncmp(conninfo->data, "postgresql://", 13) == 0);

    len = conninfo->len + sizeof(" options='-c statement_timeout=ms'")
          + NGX_INT_T_LEN;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    last = ngx_cpymem(p, conninfo->data, conninfo->len);

    if (ngx_strlcasestrn(conninfo->data, conninfo->data + conninfo->len,
            (u_char *) "options", sizeof("options") - 2)
        == NULL)
    {
        if (uri) {
            last = ngx_sprintf(last, "%coptions=-c%%20statement_timeout%%3D%M",
                ngx_strlchr(conninfo->data, conninfo->data + conninfo->len, '?')
                    ? '&'
                    : '?',
                timeout);

        } else {
            last = ngx_sprintf(last, " options='-c statement_timeout=%M'",
                timeout);
        }
    }

    *last = '\0';

    return (char *) p;
}


void
ngx_http_telehealth_pg_exit_process(void)
{
    ngx_uint_t                     i;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;
    if (pool == NULL) {
        return;
    }

    for (i = 0; i < pool->nconns; i++) {
        ngx_http_telehealth_pg_finish(&pool->conns[i]);
    }

    if (pool->listener != NULL) {
        ngx_http_telehealth_pg_finish(pool->listener);
    }

    if (pool->dispatch.posted) {
        ngx_delete_posted_event(&pool->dispatch);
    }

    ngx_http_telehealth_pg_pool = NULL;
}


static void
ngx_http_telehealth_pg_finish(ngx_http_telehealth_pg_conn_t *pc)
{
    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (pc->pg != NULL) {
        ngx_http_telehealth_pg_unregister(pc);
        PQfinish(pc->pg);
        pc->pg = NULL;
    }
}


void
ngx_http_telehealth_pg_stats(ngx_uint_t *size, ngx_uint_t *connected,
    ngx_uint_t *in_use, ngx_uint_t *waiting)
{
    ngx_uint_t                     i;
    ngx_queue_t                   *q;
    ngx_http_telehealth_pg_pool_t *pool;

    *size = 0;
    *connected = 0;
    *in_use = 0;
    *waiting = 0;

    pool = ngx_http_telehealth_pg_pool;
    if (pool == NULL) {
        return;
    }

    *size = pool->nconns;
    *connected = pool->nconnected;

    for (i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].state == NGX_HTTP_TELEHEALTH_PG_HELD
            || pool->conns[i].state == NGX_HTTP_TELEHEALTH_PG_BUSY)
        {
            (*in_use)++;
        }
    }

    for (q = ngx_queue_head(&pool->waiting);
        q != ngx_queue_sentinel(&pool->waiting); q = ngx_queue_next(q))
    {
        (*waiting)++;
    }
}


ngx_uint_t
ngx_http_telehealth_pg_available(void)
{
    return ngx_http_telehealth_pg_pool != NULL
           && ngx_http_telehealth_pg_pool->nconnected > 0;
}


static void
ngx_http_telehealth_pg_connect(ngx_http_telehealth_pg_conn_t *pc)
{
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;

    /*
     * The conninfo names a numeric address or a socket directory (checked
     * at configuration time), so PQconnectStart() does not resolve names.
     */
    pc->pg = PQconnectStart(pool->conninfo);

    if (pc->pg == NULL) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
            "telehealth: PQconnectStart() failed: out of memory");
        ngx_http_telehealth_pg_close(pc, 1);
        return;
    }

    if (PQstatus(pc->pg) == CONNECTION_BAD || PQsetnonblocking(pc->pg, 1) != 0)
    {
        if (!ngx_http_telehealth_pg_failing(pc)) {
            ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                "telehealth: PostgreSQL connect failed: %s",
                PQerrorMessage(pc->pg));
        }

        ngx_http_telehealth_pg_close(pc, 1);
        return;
    }

    PQsetNoticeProcessor(pc->pg, ngx_http_telehealth_pg_notice, pool->log);

    if (ngx_http_telehealth_pg_register(pc) != NGX_OK) {
        ngx_http_telehealth_pg_close(pc, 1);
        return;
    }

    pc->state = NGX_HTTP_TELEHEALTH_PG_CONNECTING;

    /* libpq: start as if PQconnectPoll() had asked to wait for writing */
    ngx_http_telehealth_pg_want_write(pc, 1);

    ngx_add_timer(&pc->timer, pool->timeout);
}


/* a failed connect is logged once, not on every retry of an outage */

static ngx_uint_t
ngx_http_telehealth_pg_failing(ngx_http_telehealth_pg_conn_t *pc)
{
    return pc->listener ? pc->failed : ngx_http_telehealth_pg_pool->failed;
}


/* what tells one socket from the next one given the same number */

static ino_t
ngx_http_telehealth_pg_socket_ino(ngx_socket_t fd)
{
    struct stat st;

    if (fd == (ngx_socket_t) -1 || fstat(fd, &st) != 0) {
        return 0;
    }

    return st.st_ino;
}


static void
ngx_http_telehealth_pg_connect_poll(ngx_http_telehealth_pg_conn_t *pc)
{
    PostgresPollingStatusType      rc;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;

    rc = PQconnectPoll(pc->pg);

    /*
     * libpq may move to another socket, e.g. trying the next host of a
     * multi-host conninfo; the new socket may get the old one's number
     */
    if (rc != PGRES_POLLING_FAILED
        && (PQsocket(pc->pg) != pc->c->fd
            || ngx_http_telehealth_pg_socket_ino(PQsocket(pc->pg))
                   != pc->sock_ino))
    {
        ngx_http_telehealth_pg_unregister(pc);

        if (ngx_http_telehealth_pg_register(pc) != NGX_OK) {
            ngx_http_telehealth_pg_close(pc, 1);
            return;
        }
    }

    switch (rc) {

    case PGRES_POLLING_READING:
        ngx_http_telehealth_pg_want_write(pc, 0);
        return;

    case PGRES_POLLING_WRITING:
        ngx_http_telehealth_pg_want_write(pc, 1);
        return;

    case PGRES_POLLING_OK:
        break;

    default: /* PGRES_POLLING_FAILED */
        if (!ngx_http_telehealth_pg_failing(pc)) {
            ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                "telehealth: PostgreSQL connect failed: %s",
                PQerrorMessage(pc->pg));
        }

        ngx_http_telehealth_pg_close(pc, 1);
        return;
    }

    ngx_http_telehealth_pg_want_write(pc, 0);

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (pool->failed && !pc->listener) {
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
            "telehealth: PostgreSQL is reachable again");
    }

    pc->state = NGX_HTTP_TELEHEALTH_PG_IDLE;
    pc->backoff = NGX_HTTP_TELEHEALTH_PG_BACKOFF_MIN;

    if (pc->listener) {
        pc->failed = 0;

        if (ngx_http_telehealth_pg_send(pc, NULL, pool->listen_sql, 0, NULL)
            != NGX_OK)
        {
            ngx_http_telehealth_pg_close(pc, 0);
            return;
        }

        ngx_add_timer(&pc->timer, pool->timeout);
        return;
    }

    pool->nconnected++;
    pool->failed = 0;

    ngx_post_event(&pool->dispatch, &ngx_posted_events);

    /* a new connection may reach another database (a failover) */
    ngx_http_telehealth_schema_check(pool->log);
}


static ngx_int_t
ngx_http_telehealth_pg_register(ngx_http_telehealth_pg_conn_t *pc)
{
    ngx_socket_t                   fd;
    ngx_connection_t              *c;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;

    fd = PQsocket(pc->pg);
    if (fd == (ngx_socket_t) -1) {
        return NGX_ERROR;
    }

    c = ngx_http_telehealth_conn_wrap(fd, pool->log, pc,
        ngx_http_telehealth_pg_event_handler);
    if (c == NULL) {
        return NGX_ERROR;
    }

    pc->c = c;
    pc->sock_ino = ngx_http_telehealth_pg_socket_ino(fd);

    /*
     * Level-triggered: libpq reads what fits its buffer and does not tell
     * whether more is waiting, so an edge could be lost.
     */
    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_http_telehealth_pg_unregister(pc);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_pg_unregister(ngx_http_telehealth_pg_conn_t *pc)
{
    ngx_connection_t *c;

    c = pc->c;
    if (c == NULL) {
        return;
    }

    /* libpq closes the socket itself, which also removes it from epoll */
    ngx_http_telehealth_conn_release(c, NGX_CLOSE_EVENT);

    pc->c = NULL;
}


static void
ngx_http_telehealth_pg_want_write(ngx_http_telehealth_pg_conn_t *pc,
    ngx_uint_t                                                   want)
{
    ngx_event_t *wev;

    wev = pc->c->write;

    if (want && !wev->active) {
        if (ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, pc->c->log, 0,
                "telehealth: cannot watch a PostgreSQL socket");
        }

    } else if (!want && wev->active) {
        (void) ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }
}


/*
 * Drops the connection and schedules the next attempt: soon after a lost
 * connection or a timeout, with growing delays while connects fail.
 */
static void
ngx_http_telehealth_pg_close(ngx_http_telehealth_pg_conn_t *pc,
    ngx_uint_t                                              failed)
{
    ngx_http_telehealth_pg_req_t  *req;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (pc->state >= NGX_HTTP_TELEHEALTH_PG_IDLE && !pc->listener) {
        pool->nconnected--;
    }

    pc->listening = 0;

    req = pc->req;
    pc->req = NULL;
    pc->flushing = 0;

    ngx_http_telehealth_pg_unregister(pc);

    if (pc->pg != NULL) {
        PQfinish(pc->pg);
        pc->pg = NULL;
    }

    pc->state = NGX_HTTP_TELEHEALTH_PG_CLOSED;

    if (failed) {
        if (pc->listener) {
            pc->failed = 1;

        } else {
            pool->failed = 1;
        }
        ngx_add_timer(&pc->timer, pc->backoff);
        pc->backoff =
            ngx_min(pc->backoff * 2, NGX_HTTP_TELEHEALTH_PG_BACKOFF_MAX);

    } else {
        ngx_add_timer(&pc->timer, NGX_HTTP_TELEHEALTH_PG_BACKOFF_MIN);
    }

    if (pool->nconnected == 0 && pool->failed
        && !ngx_queue_empty(&pool->waiting))
    {
        /* the waiting requests get their 503 from the dispatcher */
        ngx_post_event(&pool->dispatch, &ngx_posted_events);
    }

    if (req != NULL && !req->running) {
        /* held between the queries of a transaction: fail the next one */
        req->conn = NULL;
        req->lost = 1;

    } else if (req != NULL) {
        req->conn = NULL;
        req->running = 0;
        req->status = NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE;

        if (req->timer.timer_set) {
            ngx_del_timer(&req->timer);
        }

        if (req->handler) {
            req->handler(req);
        }
    }
}


static void
ngx_http_telehealth_pg_timer_handler(ngx_event_t *ev)
{
    ngx_http_telehealth_pg_conn_t *pc;

    pc = ev->data;

    switch (pc->state) {

    case NGX_HTTP_TELEHEALTH_PG_CLOSED:
        ngx_http_telehealth_pg_connect(pc);
        return;

    case NGX_HTTP_TELEHEALTH_PG_CONNECTING:
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
            "telehealth: PostgreSQL connect timed out");
        ngx_http_telehealth_pg_close(pc, 1);
        return;

    default:
        /* an orphaned query outlived its time: drop the connection */
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
            "telehealth: abandoned PostgreSQL query timed out");
        ngx_http_telehealth_pg_close(pc, 0);
        return;
    }
}


static void
ngx_http_telehealth_pg_event_handler(ngx_event_t *ev)
{
    int                            rc;
    PGnotify                      *notify;
    ngx_connection_t              *c;
    ngx_http_telehealth_pg_conn_t *pc;
    ngx_http_telehealth_pg_pool_t *pool;

    c = ev->data;
    pc = c->data;
    pool = ngx_http_telehealth_pg_pool;

    switch (pc->state) {

    case NGX_HTTP_TELEHEALTH_PG_CONNECTING:
        ngx_http_telehealth_pg_connect_poll(pc);
        return;

    case NGX_HTTP_TELEHEALTH_PG_BUSY:
        if (pc->flushing) {
            rc = PQflush(pc->pg);

            if (rc == -1) {
                ngx_log_error(NGX_LOG_ERR, c->log, 0,
                    "telehealth: PostgreSQL send failed: %s",
                    PQerrorMessage(pc->pg));
                ngx_http_telehealth_pg_close(pc, 0);
                return;
            }

            if (rc == 0) {
                pc->flushing = 0;
                ngx_http_telehealth_pg_want_write(pc, 0);
            }
        }

        if (!ev->write || !pc->flushing) {
            ngx_http_telehealth_pg_read_results(pc);
        }

        return;

    case NGX_HTTP_TELEHEALTH_PG_IDLE:
    case NGX_HTTP_TELEHEALTH_PG_HELD:
        if (ev->write) {
            ngx_http_telehealth_pg_want_write(pc, 0);
            return;
        }

        /* an idle connection speaks only when the server goes away */
        if (PQconsumeInput(pc->pg) == 0 || PQstatus(pc->pg) != CONNECTION_OK) {
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                "telehealth: PostgreSQL connection lost: %s",
                PQerrorMessage(pc->pg));
            ngx_http_telehealth_pg_close(pc, 0);
            return;
        }

        while ((notify = PQnotifies(pc->pg)) != NULL) {
            if (pc->listener && pc->listening && pool->notify != NULL) {
                pool->notify(notify->extra);
            }

            PQfreemem(notify);
        }

        return;

    default:
        return;
    }
}


static void
ngx_http_telehealth_pg_read_results(ngx_http_telehealth_pg_conn_t *pc)
{
    PGresult                     *res;
    ngx_http_telehealth_pg_req_t *req;

    if (PQconsumeInput(pc->pg) == 0) {
        ngx_log_error(NGX_LOG_WARN, pc->c->log, 0,
            "telehealth: PostgreSQL connection lost: %s",
            PQerrorMessage(pc->pg));
        ngx_http_telehealth_pg_close(pc, 0);
        return;
    }

    while (!PQisBusy(pc->pg)) {
        res = PQgetResult(pc->pg);

        if (res == NULL) {
            ngx_http_telehealth_pg_done(pc);
            return;
        }

        req = pc->req;

        if (req == NULL) {
            /* nobody waits for it any more */
            PQclear(res);
            continue;
        }

        /* keep the first error of a query, else its last result */
        if (req->result != NULL) {
            if (PQresultStatus(req->result) == PGRES_FATAL_ERROR) {
                PQclear(res);
                continue;
            }

            PQclear(req->result);
        }

        req->result = res;
    }
}


static void
ngx_http_telehealth_pg_done(ngx_http_telehealth_pg_conn_t *pc)
{
    ExecStatusType                st;
    ngx_http_telehealth_pg_req_t *req;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    req = pc->req;

    if (PQstatus(pc->pg) != CONNECTION_OK) {
        ngx_log_error(NGX_LOG_WARN, pc->c->log, 0,
            "telehealth: PostgreSQL connection lost: %s",
            PQerrorMessage(pc->pg));
        ngx_http_telehealth_pg_close(pc, 0);
        return;
    }

    if (req == NULL) {
        ngx_http_telehealth_pg_free(pc);

        if (pc->listener && !pc->listening
            && pc->state == NGX_HTTP_TELEHEALTH_PG_IDLE)
        {
            ngx_http_telehealth_pg_listen_started(pc);
        }

        return;
    }

    req->running = 0;

    if (req->timer.timer_set) {
        ngx_del_timer(&req->timer);
    }

    st = req->result ? PQresultStatus(req->result) : PGRES_FATAL_ERROR;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        req->status = NGX_HTTP_TELEHEALTH_PG_OK;

    } else if (ngx_http_telehealth_pg_lost(req->result)) {
        req->status = NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE;

    } else if (ngx_strcmp(ngx_http_telehealth_pg_sqlstate(req), "57014") == 0) {
        /* statement_timeout: too slow, as if the worker's timer fired */
        ngx_log_error(NGX_LOG_WARN, req->log, 0,
            "telehealth: PostgreSQL query timed out");
        req->status = NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE;

    } else {
        req->status = NGX_HTTP_TELEHEALTH_PG_FAILED;

        /*
         * Only the SQLSTATE and the primary message: details may quote
         * values, and values may be personal data.
         */
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
            "telehealth: PostgreSQL query failed: %s %s",
            ngx_http_telehealth_pg_sqlstate(req),
            req->result
                ? PQresultErrorField(req->result, PG_DIAG_MESSAGE_PRIMARY)
                : "no result");
    }

    if (req->keep) {
        pc->state = NGX_HTTP_TELEHEALTH_PG_HELD;

    } else {
        pc->req = NULL;
        req->conn = NULL;
        ngx_http_telehealth_pg_free(pc);
    }

    if (req->handler) {
        req->handler(req);
    }
}


/* a connection nobody holds: roll back what was left open, then idle */

static void
ngx_http_telehealth_pg_free(ngx_http_telehealth_pg_conn_t *pc)
{
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;

    pc->req = NULL;

    if (PQtransactionStatus(pc->pg) != PQTRANS_IDLE) {
        if (ngx_http_telehealth_pg_send(pc, NULL, "ROLLBACK", 0, NULL)
            != NGX_OK)
        {
            ngx_http_telehealth_pg_close(pc, 0);
            return;
        }

        ngx_add_timer(&pc->timer, pool->timeout);
        return;
    }

    pc->state = NGX_HTTP_TELEHEALTH_PG_IDLE;

    if (!ngx_queue_empty(&pool->waiting)) {
        ngx_post_event(&pool->dispatch, &ngx_posted_events);
    }
}


static ngx_int_t
ngx_http_telehealth_pg_send(ngx_http_telehealth_pg_conn_t *pc,
    ngx_http_telehealth_pg_req_t *req, const char *sql, int nparams,
    const char *const *params)
{
    int rc;

    if (!PQsendQueryParams(pc->pg, sql, nparams, NULL, params, NULL, NULL, 0)) {
        ngx_log_error(NGX_LOG_WARN, pc->c->log, 0,
            "telehealth: PostgreSQL send failed: %s", PQerrorMessage(pc->pg));
        return NGX_ERROR;
    }

    rc = PQflush(pc->pg);
    if (rc == -1) {
        return NGX_ERROR;
    }

    pc->flushing = (rc == 1);
    ngx_http_telehealth_pg_want_write(pc, pc->flushing);

    pc->state = NGX_HTTP_TELEHEALTH_PG_BUSY;
    pc->req = req;

    if (req != NULL) {
        req->conn = pc;
        req->running = 1;
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_pg_dispatch(ngx_event_t *ev)
{
    ngx_uint_t                     i;
    ngx_queue_t                   *q;
    ngx_http_telehealth_pg_req_t  *req;
    ngx_http_telehealth_pg_conn_t *pc;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ev->data;

    while (!ngx_queue_empty(&pool->waiting)) {

        q = ngx_queue_head(&pool->waiting);
        req = ngx_queue_data(q, ngx_http_telehealth_pg_req_t, queue);

        if (pool->nconnected == 0 && pool->failed) {
            ngx_queue_remove(q);
            req->waiting = 0;
            req->status = NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE;

            if (req->timer.timer_set) {
                ngx_del_timer(&req->timer);
            }

            if (req->handler) {
                req->handler(req);
            }

            continue;
        }

        pc = NULL;

        for (i = 0; i < pool->nconns; i++) {
            if (pool->conns[i].state == NGX_HTTP_TELEHEALTH_PG_IDLE) {
                pc = &pool->conns[i];
                break;
            }
        }

        if (pc == NULL) {
            return;
        }

        ngx_queue_remove(q);
        req->waiting = 0;

        if (ngx_http_telehealth_pg_send(pc, req, req->sql, req->nparams,
                req->params)
            != NGX_OK)
        {
            ngx_http_telehealth_pg_close(pc, 0);

            req->status = NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE;

            if (req->timer.timer_set) {
                ngx_del_timer(&req->timer);
            }

            if (req->handler) {
                req->handler(req);
            }
        }
    }
}


ngx_http_telehealth_pg_req_t *
ngx_http_telehealth_pg_create(ngx_pool_t *pool, ngx_log_t *log)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_telehealth_pg_req_t *req;

    req = ngx_pcalloc(pool, sizeof(ngx_http_telehealth_pg_req_t));
    if (req == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_telehealth_pg_cleanup;
    cln->data = req;

    req->cleanup = cln;
    req->log = log;
    req->timer.handler = ngx_http_telehealth_pg_req_timeout;
    req->timer.data = req;
    req->timer.log = log;

    return req;
}


ngx_int_t
ngx_http_telehealth_pg_query(ngx_http_telehealth_pg_req_t *req, const char *sql,
    int nparams, const char *const *params)
{
    ngx_uint_t                     i;
    ngx_http_telehealth_pg_conn_t *pc;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;

    if (pool == NULL || req->running || req->waiting) {
        return NGX_ERROR;
    }

    if (req->lost) {
        return NGX_DECLINED;
    }

    if (req->result != NULL) {
        PQclear(req->result);
        req->result = NULL;
    }

    req->sql = sql;
    req->nparams = nparams;
    req->params = params;

    pc = req->conn;

    if (pc == NULL) {
        if (pool->nconnected == 0 && pool->failed) {
            return NGX_DECLINED;
        }

        if (ngx_queue_empty(&pool->waiting)) {
            for (i = 0; i < pool->nconns; i++) {
                if (pool->conns[i].state == NGX_HTTP_TELEHEALTH_PG_IDLE) {
                    pc = &pool->conns[i];
                    break;
                }
            }
        }

        if (pc == NULL) {
            ngx_queue_insert_tail(&pool->waiting, &req->queue);
            req->waiting = 1;
            ngx_add_timer(&req->timer, pool->timeout);
            return NGX_AGAIN;
        }
    }

    if (ngx_http_telehealth_pg_send(pc, req, sql, nparams, params) != NGX_OK) {
        pc->req = NULL;
        req->conn = NULL;
        req->running = 0;
        ngx_http_telehealth_pg_close(pc, 0);
        return NGX_DECLINED;
    }

    ngx_add_timer(&req->timer, pool->timeout);

    return NGX_AGAIN;
}


static void
ngx_http_telehealth_pg_req_timeout(ngx_event_t *ev)
{
    ngx_http_telehealth_pg_req_t  *req;
    ngx_http_telehealth_pg_conn_t *pc;

    req = ev->data;

    ngx_log_error(NGX_LOG_WARN, req->log, 0,
        "telehealth: PostgreSQL query timed out%s",
        req->waiting ? " waiting for a connection" : "");

    if (req->waiting) {
        ngx_queue_remove(&req->queue);
        req->waiting = 0;

    } else if (req->conn != NULL) {
        /* the query may hang on; the connection cannot be trusted */
        pc = req->conn;
        pc->req = NULL;
        req->conn = NULL;
        req->running = 0;
        ngx_http_telehealth_pg_close(pc, 0);
    }

    req->status = NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE;

    if (req->handler) {
        req->handler(req);
    }
}


void
ngx_http_telehealth_pg_release(ngx_http_telehealth_pg_req_t *req)
{
    ngx_http_telehealth_pg_conn_t *pc;
    ngx_http_telehealth_pg_pool_t *pool;

    pool = ngx_http_telehealth_pg_pool;

    if (req->timer.timer_set) {
        ngx_del_timer(&req->timer);
    }

    if (req->waiting) {
        ngx_queue_remove(&req->queue);
        req->waiting = 0;
    }

    pc = req->conn;
    req->conn = NULL;
    req->lost = 0;

    if (pc != NULL && pool != NULL) {
        pc->req = NULL;

        if (req->running) {
            /* let the query finish on its own, but not forever */
            req->running = 0;

            if (!pc->timer.timer_set) {
                ngx_add_timer(&pc->timer, pool->timeout);
            }

        } else {
            ngx_http_telehealth_pg_free(pc);
        }
    }

    if (req->result != NULL) {
        PQclear(req->result);
        req->result = NULL;
    }
}


static void
ngx_http_telehealth_pg_cleanup(void *data)
{
    ngx_http_telehealth_pg_req_t *req = data;

    req->handler = NULL;
    ngx_http_telehealth_pg_release(req);
}


const char *
ngx_http_telehealth_pg_sqlstate(ngx_http_telehealth_pg_req_t *req)
{
    char *state;

    if (req->result == NULL) {
        return "";
    }

    state = PQresultErrorField(req->result, PG_DIAG_SQLSTATE);

    return state ? state : "";
}


/* errors that say "the server went away", not "the query is wrong" */

static ngx_uint_t
ngx_http_telehealth_pg_lost(PGresult *res)
{
    char *state;

    if (res == NULL) {
        return 1;
    }

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state == NULL) {
        return 1;
    }

    return ngx_strncmp(state, "08", 2) == 0     /* connection exception */
           || ngx_strncmp(state, "57", 2) == 0  /* operator intervention */
           || ngx_strncmp(state, "53", 2) == 0; /* insufficient resources */
}


static void
ngx_http_telehealth_pg_notice(void *arg, const char *message)
{
    ngx_log_t *log = arg;

    ngx_log_error(NGX_LOG_INFO, log, 0, "telehealth: PostgreSQL: %s", message);
}


ngx_int_t
ngx_http_telehealth_pg_value(ngx_pool_t *pool, PGresult *res, int row, int col,
    ngx_str_t *value)
{
    size_t len;

    if (PQgetisnull(res, row, col)) {
        ngx_str_null(value);
        return NGX_OK;
    }

    len = PQgetlength(res, row, col);

    value->data = ngx_pnalloc(pool, len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, PQgetvalue(res, row, col), len);
    value->data[len] = '\0';
    value->len = len;

    return NGX_OK;
}


ngx_uint_t
ngx_http_telehealth_is_uuid(const char *s, size_t len)
{
    size_t i;

    if (s == NULL || len != NGX_HTTP_TELEHEALTH_UUID_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }

            continue;
        }

        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')
                || (s[i] >= 'A' && s[i] <= 'F')))
        {
            return 0;
        }
    }

    return 1;
}


/* a random (version 4) UUID */

ngx_int_t
ngx_http_telehealth_new_uuid(ngx_pool_t *pool, ngx_str_t *uuid)
{
    u_char raw[16];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    raw[6] = (raw[6] & 0x0f) | 0x40;
    raw[8] = (raw[8] & 0x3f) | 0x80;

    uuid->data = ngx_pnalloc(pool, NGX_HTTP_TELEHEALTH_UUID_LEN + 1);
    if (uuid->data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(uuid->data,
        "%02xd%02xd%02xd%02xd-%02xd%02xd-%02xd%02xd-%02xd%02xd-"
        "%02xd%02xd%02xd%02xd%02xd%02xd%Z",
        raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8],
        raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]);

    uuid->len = NGX_HTTP_TELEHEALTH_UUID_LEN;

    return NGX_OK;
}
