/*
 * hiredis on nginx's event loop.  The adapter hooks map hiredis' read and
 * write interest onto an ngx_connection_t made for its socket.  Commands
 * carry a timer each; a command that times out drops the connection, which
 * makes hiredis answer every pending command with no reply, and the
 * connection is made again with back-off.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <stdio.h>

#include <hiredis/async.h>

#include "ngx_http_telehealth_redis.h"
#include "ngx_http_telehealth_conn.h"


#define NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MAX  2000


typedef struct {
    redisAsyncContext                     *ac;
    ngx_connection_t                      *c;
    ngx_event_t                            timer;  /* reconnect or connect */
    ngx_msec_t                             backoff;
    ngx_msec_t                             timeout;
    ngx_log_t                             *log;
    char                                  *host;
    char                                  *unix_path;
    int                                    port;
    char                                  *prefix;
    char                                  *channel;  /* subscriber: NULL */
    ngx_http_telehealth_redis_handler_pt   message;  /* subscriber's */
    void                                  *message_data;
    unsigned                               connected:1;
    unsigned                               failed:1;
} ngx_http_telehealth_redis_t;


/* malloc()ed: hiredis may outlive the pool of whoever sent the command */
typedef struct {
    ngx_http_telehealth_redis_handler_pt   handler;
    void                                  *data;
    ngx_pool_cleanup_t                    *cleanup;
    ngx_event_t                            timer;
} ngx_http_telehealth_redis_cmd_t;


static void ngx_http_telehealth_redis_connect(ngx_http_telehealth_redis_t *rd);
static void ngx_http_telehealth_redis_drop(ngx_http_telehealth_redis_t *rd);
static void ngx_http_telehealth_redis_schedule(ngx_http_telehealth_redis_t *rd);
static void ngx_http_telehealth_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_telehealth_redis_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_telehealth_redis_timer_handler(ngx_event_t *ev);
static void ngx_http_telehealth_redis_event_handler(ngx_event_t *ev);
static void ngx_http_telehealth_redis_add_read(void *data);
static void ngx_http_telehealth_redis_del_read(void *data);
static void ngx_http_telehealth_redis_add_write(void *data);
static void ngx_http_telehealth_redis_del_write(void *data);
static void ngx_http_telehealth_redis_cleanup(void *data);
static void ngx_http_telehealth_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_telehealth_redis_cmd_timeout(ngx_event_t *ev);
static void ngx_http_telehealth_redis_cmd_disarm(void *data);
static void ngx_http_telehealth_redis_message(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_telehealth_redis_lost(ngx_http_telehealth_redis_t *rd);


static ngx_http_telehealth_redis_t  *ngx_http_telehealth_redis;
static ngx_http_telehealth_redis_t  *ngx_http_telehealth_redis_sub;


ngx_int_t
ngx_http_telehealth_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t *mcf)
{
    ngx_http_telehealth_redis_t  *rd;

    rd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_redis_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    /* the configuration strings are NUL-terminated */
    rd->host = mcf->redis_host.len ? (char *) mcf->redis_host.data : NULL;
    rd->unix_path = mcf->redis_unix.len ? (char *) mcf->redis_unix.data : NULL;
    rd->port = (int) mcf->redis_port;
    rd->prefix = (char *) mcf->redis_prefix.data;
    rd->timeout = mcf->timeout;
    rd->log = cycle->log;
    rd->backoff = NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MIN;

    rd->timer.handler = ngx_http_telehealth_redis_timer_handler;
    rd->timer.data = rd;
    rd->timer.log = cycle->log;
    rd->timer.cancelable = 1;

    ngx_http_telehealth_redis = rd;

    ngx_http_telehealth_redis_connect(rd);

    return NGX_OK;
}


void
ngx_http_telehealth_redis_exit_process(void)
{
    redisCallback                    *cb;
    ngx_http_telehealth_redis_t      *rd;
    ngx_http_telehealth_redis_cmd_t  *cmd;

    rd = ngx_http_telehealth_redis;
    if (rd == NULL) {
        return;
    }

    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    ngx_http_telehealth_redis = NULL;

    if (ngx_http_telehealth_redis_sub != NULL) {
        if (ngx_http_telehealth_redis_sub->timer.timer_set) {
            ngx_del_timer(&ngx_http_telehealth_redis_sub->timer);
        }

        ngx_http_telehealth_redis_sub->message = NULL;
        ngx_http_telehealth_redis_drop(ngx_http_telehealth_redis_sub);
        ngx_http_telehealth_redis_sub = NULL;
    }

    if (rd->ac != NULL) {
        /* requests are being torn down: no reply may reach them now */
        for (cb = rd->ac->replies.head; cb; cb = cb->next) {
            cmd = cb->privdata;

            if (cmd != NULL) {
                cmd->handler = NULL;
            }
        }

        ngx_http_telehealth_redis_drop(rd);
    }
}


ngx_uint_t
ngx_http_telehealth_redis_available(void)
{
    return ngx_http_telehealth_redis != NULL
           && ngx_http_telehealth_redis->connected;
}


static void
ngx_http_telehealth_redis_connect(ngx_http_telehealth_redis_t *rd)
{
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    if (rd->unix_path != NULL) {
        ac = redisAsyncConnectUnix(rd->unix_path);

    } else {
        ac = redisAsyncConnect(rd->host, rd->port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "telehealth: redisAsyncConnect() failed");
        ngx_http_telehealth_redis_schedule(rd);
        return;
    }

    if (ac->err) {
        if (!rd->failed) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "telehealth: Redis connect failed: %s", ac->errstr);
        }

        redisAsyncFree(ac);
        ngx_http_telehealth_redis_schedule(rd);
        return;
    }

    c = ngx_http_telehealth_conn_wrap(ac->c.fd, rd->log, rd,
                                      ngx_http_telehealth_redis_event_handler);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_telehealth_redis_schedule(rd);
        return;
    }

    rd->c = c;
    rd->ac = ac;
    rd->connected = 0;

    ac->data = rd;
    ac->ev.data = rd;
    ac->ev.addRead = ngx_http_telehealth_redis_add_read;
    ac->ev.delRead = ngx_http_telehealth_redis_del_read;
    ac->ev.addWrite = ngx_http_telehealth_redis_add_write;
    ac->ev.delWrite = ngx_http_telehealth_redis_del_write;
    ac->ev.cleanup = ngx_http_telehealth_redis_cleanup;

    /* the connect callback asks for the first write event */
    redisAsyncSetConnectCallback(ac, ngx_http_telehealth_redis_connected);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_telehealth_redis_disconnected);

    ngx_add_timer(&rd->timer, rd->timeout);
}


/* closes the connection now; pending commands get a NULL reply */

static void
ngx_http_telehealth_redis_drop(ngx_http_telehealth_redis_t *rd)
{
    redisAsyncContext  *ac;

    ac = rd->ac;
    rd->ac = NULL;
    rd->connected = 0;

    if (ac != NULL) {
        redisAsyncFree(ac);
    }

    ngx_http_telehealth_redis_lost(rd);

    if (ngx_http_telehealth_redis != NULL) {
        ngx_http_telehealth_redis_schedule(rd);
    }
}


static void
ngx_http_telehealth_redis_schedule(ngx_http_telehealth_redis_t *rd)
{
    if (ngx_http_telehealth_redis == NULL) {
        return;     /* exiting */
    }

    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    ngx_add_timer(&rd->timer, rd->backoff);
    rd->backoff = ngx_min(rd->backoff * 2,
                          NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MAX);
}


static void
ngx_http_telehealth_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_telehealth_redis_t  *rd;

    rd = ac->data;

    if (rd->ac != ac) {
        return;
    }

    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        if (!rd->failed) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "telehealth: Redis connect failed: %s",
                          ac->errstr);
        }

        rd->failed = 1;
        rd->ac = NULL;
        ngx_http_telehealth_redis_schedule(rd);
        return;
    }

    if (rd->failed) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "telehealth: Redis is reachable again");
    }

    rd->connected = 1;
    rd->failed = 0;
    rd->backoff = NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MIN;

    /* a subscriber's connection only ever subscribes */
    if (rd->channel != NULL
        && redisAsyncCommand(rd->ac, ngx_http_telehealth_redis_message, rd,
                             "SUBSCRIBE %s", rd->channel)
           != REDIS_OK)
    {
        rd->failed = 1;
        ngx_http_telehealth_redis_drop(rd);
    }
}


static void
ngx_http_telehealth_redis_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_telehealth_redis_t  *rd;

    rd = ac->data;

    if (rd->ac != ac) {
        return;     /* dropped on purpose */
    }

    ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                  "telehealth: Redis connection lost: %s",
                  ac->errstr[0] ? ac->errstr : "closed");

    rd->ac = NULL;
    rd->connected = 0;
    rd->failed = 1;
    ngx_http_telehealth_redis_lost(rd);
    ngx_http_telehealth_redis_schedule(rd);
}


static void
ngx_http_telehealth_redis_timer_handler(ngx_event_t *ev)
{
    ngx_http_telehealth_redis_t  *rd;

    rd = ev->data;

    if (rd->ac == NULL) {
        ngx_http_telehealth_redis_connect(rd);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "telehealth: Redis connect timed out");

    rd->failed = 1;
    ngx_http_telehealth_redis_drop(rd);
}


static void
ngx_http_telehealth_redis_event_handler(ngx_event_t *ev)
{
    ngx_connection_t             *c;
    ngx_http_telehealth_redis_t  *rd;

    c = ev->data;
    rd = c->data;

    if (rd->ac == NULL) {
        return;
    }

    if (ev->write) {
        redisAsyncHandleWrite(rd->ac);

    } else {
        redisAsyncHandleRead(rd->ac);
    }
}


/*
 * The adapter.  Level-triggered: hiredis reads at most 16k per call and
 * relies on being called again while data is waiting.
 */

static void
ngx_http_telehealth_redis_add_read(void *data)
{
    ngx_http_telehealth_redis_t  *rd = data;

    if (rd->c != NULL && !rd->c->read->active) {
        (void) ngx_add_event(rd->c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_telehealth_redis_del_read(void *data)
{
    ngx_http_telehealth_redis_t  *rd = data;

    if (rd->c != NULL && rd->c->read->active) {
        (void) ngx_del_event(rd->c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_telehealth_redis_add_write(void *data)
{
    ngx_http_telehealth_redis_t  *rd = data;

    if (rd->c != NULL && !rd->c->write->active) {
        (void) ngx_add_event(rd->c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_telehealth_redis_del_write(void *data)
{
    ngx_http_telehealth_redis_t  *rd = data;

    if (rd->c != NULL && rd->c->write->active) {
        (void) ngx_del_event(rd->c->write, NGX_WRITE_EVENT, 0);
    }
}


/* called by hiredis right before it closes the socket */

static void
ngx_http_telehealth_redis_cleanup(void *data)
{
    ngx_connection_t             *c;
    ngx_http_telehealth_redis_t  *rd = data;

    c = rd->c;
    if (c == NULL) {
        return;
    }

    /* hiredis closes the socket itself, which also removes it from epoll */
    ngx_http_telehealth_conn_release(c, NGX_CLOSE_EVENT);

    rd->c = NULL;
}


ngx_int_t
ngx_http_telehealth_redis_command(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_telehealth_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    ngx_pool_cleanup_t               *cln;
    ngx_http_telehealth_redis_t      *rd;
    ngx_http_telehealth_redis_cmd_t  *cmd;

    rd = ngx_http_telehealth_redis;

    if (rd == NULL || rd->ac == NULL) {
        return NGX_DECLINED;
    }

    cln = NULL;

    if (pool != NULL) {
        cln = ngx_pool_cleanup_add(pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }
    }

    cmd = ngx_calloc(sizeof(ngx_http_telehealth_redis_cmd_t), log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;
    cmd->timer.handler = ngx_http_telehealth_redis_cmd_timeout;
    cmd->timer.data = cmd;
    cmd->timer.log = rd->log;

    if (redisAsyncCommandArgv(rd->ac, ngx_http_telehealth_redis_reply, cmd,
                              argc, argv, argvlen)
        != REDIS_OK)
    {
        ngx_free(cmd);
        return NGX_DECLINED;
    }

    if (cln != NULL) {
        cln->handler = ngx_http_telehealth_redis_cmd_disarm;
        cln->data = cmd;
        cmd->cleanup = cln;
    }

    ngx_add_timer(&cmd->timer, rd->timeout);

    return NGX_OK;
}


static void
ngx_http_telehealth_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_telehealth_redis_cmd_t  *cmd = privdata;

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    if (cmd->cleanup != NULL) {
        cmd->cleanup->handler = NULL;
    }

    if (cmd->handler) {
        cmd->handler(cmd->data, r);
    }

    ngx_free(cmd);
}


static void
ngx_http_telehealth_redis_cmd_timeout(ngx_event_t *ev)
{
    ngx_http_telehealth_redis_t  *rd;

    rd = ngx_http_telehealth_redis;

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "telehealth: Redis command timed out");

    if (rd != NULL && rd->ac != NULL) {
        rd->failed = 1;
        ngx_http_telehealth_redis_drop(rd);
    }
}


/* the owner's pool is going away: the reply must not reach it */

static void
ngx_http_telehealth_redis_cmd_disarm(void *data)
{
    ngx_http_telehealth_redis_cmd_t  *cmd = data;

    cmd->handler = NULL;
    cmd->cleanup = NULL;
}


char *
ngx_http_telehealth_redis_key(ngx_pool_t *pool, const char *fmt,
    const char *id)
{
    int                           n;
    char                         *key;
    size_t                        len;
    const char                   *prefix;

    prefix = ngx_http_telehealth_redis ? ngx_http_telehealth_redis->prefix
                                       : TH_REDIS_PREFIX_DEFAULT;

    len = ngx_strlen(fmt) + ngx_strlen(prefix) + (id ? ngx_strlen(id) : 0);

    key = ngx_pnalloc(pool, len + 1);
    if (key == NULL) {
        return NULL;
    }

    n = snprintf(key, len + 1, fmt, prefix, id);
    if (n < 0 || (size_t) n > len) {
        return NULL;
    }

    return key;
}


/*
 * A subscriber: a connection of its own (a subscribed connection takes no
 * other command) on one channel, made again with back-off when it drops.
 * handler gets every message of the channel and the subscription's
 * confirmation (arrays as Redis sends them), and NULL whenever the
 * connection is lost: what was published meanwhile is lost too.
 */

ngx_int_t
ngx_http_telehealth_redis_subscribe(ngx_cycle_t *cycle, const char *channel,
    ngx_http_telehealth_redis_handler_pt handler, void *data)
{
    size_t                        len;
    ngx_http_telehealth_redis_t  *rd, *first;

    first = ngx_http_telehealth_redis;

    if (first == NULL || ngx_http_telehealth_redis_sub != NULL) {
        return NGX_ERROR;
    }

    rd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_redis_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(channel);
    rd->channel = ngx_pnalloc(cycle->pool, len + 1);
    if (rd->channel == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(rd->channel, channel, len + 1);

    rd->host = first->host;
    rd->unix_path = first->unix_path;
    rd->port = first->port;
    rd->prefix = first->prefix;
    rd->timeout = first->timeout;
    rd->log = cycle->log;
    rd->backoff = NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MIN;
    rd->message = handler;
    rd->message_data = data;

    rd->timer.handler = ngx_http_telehealth_redis_timer_handler;
    rd->timer.data = rd;
    rd->timer.log = cycle->log;
    rd->timer.cancelable = 1;

    ngx_http_telehealth_redis_sub = rd;

    ngx_http_telehealth_redis_connect(rd);

    return NGX_OK;
}


static void
ngx_http_telehealth_redis_message(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_telehealth_redis_t  *rd = privdata;

    /* a NULL reply: the connection is going, redis_lost() tells */
    if (r == NULL || rd->ac != ac || rd->message == NULL) {
        return;
    }

    rd->message(rd->message_data, r);
}


static void
ngx_http_telehealth_redis_lost(ngx_http_telehealth_redis_t *rd)
{
    if (rd->channel != NULL && rd->message != NULL) {
        rd->message(rd->message_data, NULL);
    }
}
