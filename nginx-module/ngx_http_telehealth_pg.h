/*
 * A per-worker pool of non-blocking PostgreSQL connections.
 *
 * A caller creates a request in its own pool, sends queries through it and
 * gets a callback per query.  Destroying that pool disarms the callback and
 * gives the connection back (rolling back an open transaction), so a client
 * that goes away mid-query never leaves a dangling pointer behind.
 */

#ifndef _NGX_HTTP_TELEHEALTH_PG_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_PG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <libpq-fe.h>


#define NGX_HTTP_TELEHEALTH_UUID_LEN 36


typedef struct ngx_http_telehealth_pg_req_s  ngx_http_telehealth_pg_req_t;
typedef struct ngx_http_telehealth_pg_conn_s ngx_http_telehealth_pg_conn_t;

typedef void (*ngx_http_telehealth_pg_handler_pt)(
    ngx_http_telehealth_pg_req_t *req);

/* a notification's payload on the listened channel */
typedef void (*ngx_http_telehealth_pg_notify_pt)(const char *payload);

/* LISTEN took effect (again): whatever was sent before may be missed */
typedef void (*ngx_http_telehealth_pg_listening_pt)(void);


typedef enum {
    NGX_HTTP_TELEHEALTH_PG_OK = 0,
    NGX_HTTP_TELEHEALTH_PG_FAILED,     /* the query failed (SQL error) */
    NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE /* down, lost, or timed out */
} ngx_http_telehealth_pg_status_e;


struct ngx_http_telehealth_pg_req_s {
    ngx_http_telehealth_pg_handler_pt handler;
    void                             *data;

    /*
     * The result of the last query: valid in the handler and until the
     * next query, ngx_http_telehealth_pg_release() or the pool's end.
     */
    PGresult                       *result;
    ngx_http_telehealth_pg_status_e status;

    /* keep the connection between queries: a transaction */
    unsigned keep : 1;

    /* private */
    unsigned waiting : 1;
    unsigned running : 1;
    unsigned lost : 1;

    ngx_log_t                     *log;
    ngx_pool_cleanup_t            *cleanup;
    ngx_http_telehealth_pg_conn_t *conn;
    ngx_queue_t                    queue;
    ngx_event_t                    timer;

    const char        *sql;
    int                nparams;
    const char *const *params;
};


ngx_int_t ngx_http_telehealth_pg_init_process(ngx_cycle_t *cycle,
    ngx_str_t *conninfo, ngx_uint_t size, ngx_msec_t timeout);
void ngx_http_telehealth_pg_exit_process(void);

ngx_http_telehealth_pg_req_t *ngx_http_telehealth_pg_create(ngx_pool_t *pool,
    ngx_log_t                                                          *log);

/*
 * Sends sql with its text parameters (they must live until the handler
 * runs).  NGX_AGAIN: the handler will be called.  NGX_DECLINED: PostgreSQL
 * is down right now; nothing was queued, the handler is not called.
 */
ngx_int_t ngx_http_telehealth_pg_query(ngx_http_telehealth_pg_req_t *req,
    const char *sql, int nparams, const char *const *params);

/* Gives a kept connection back; an open transaction is rolled back. */
void ngx_http_telehealth_pg_release(ngx_http_telehealth_pg_req_t *req);

/* this worker's pool: connections, open ones, busy or held, waiting */
void ngx_http_telehealth_pg_stats(ngx_uint_t *size, ngx_uint_t *connected,
    ngx_uint_t *in_use, ngx_uint_t *waiting);

/* NGX_OK if the last query returned rows or a command status. */
#define ngx_http_telehealth_pg_ok(req) \
    ((req)->status == NGX_HTTP_TELEHEALTH_PG_OK)

/* SQLSTATE of a failed query, or "" */
const char *ngx_http_telehealth_pg_sqlstate(ngx_http_telehealth_pg_req_t *req);

/*
 * One more connection of the worker runs sql (a LISTEN) after every
 * connect, then hands each notification to notify.  After
 * ngx_http_telehealth_pg_init_process().
 */
ngx_int_t ngx_http_telehealth_pg_listen(ngx_cycle_t *cycle, const char *sql,
    ngx_http_telehealth_pg_notify_pt    notify,
    ngx_http_telehealth_pg_listening_pt listening);
ngx_uint_t ngx_http_telehealth_pg_listening(void);

/* whether some connection is up (for health answers) */
ngx_uint_t ngx_http_telehealth_pg_available(void);

/* a NUL-terminated pool copy of a PostgreSQL value */
ngx_int_t ngx_http_telehealth_pg_value(ngx_pool_t *pool, PGresult *res, int row,
    int col, ngx_str_t *value);

/* ids are PostgreSQL uuids: checked before a query carries one */
ngx_uint_t ngx_http_telehealth_is_uuid(const char *s, size_t len);
/* a random (version 4) UUID, for a row the module creates */
ngx_int_t ngx_http_telehealth_new_uuid(ngx_pool_t *pool, ngx_str_t *uuid);


#endif /* _NGX_HTTP_TELEHEALTH_PG_H_INCLUDED_ */
