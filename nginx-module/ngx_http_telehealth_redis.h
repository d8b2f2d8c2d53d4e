/*
 * One hiredis asynchronous connection per worker, driven by the worker's
 * event loop.  hiredis 0.14 has no timeouts of its own and resolves names
 * blocking, so it connects to a numeric address or a unix socket only and
 * nginx timers bound the connect and every command.
 */

#ifndef _NGX_HTTP_TELEHEALTH_REDIS_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>

#include "ngx_http_telehealth_module.h"


/*
 * reply is NULL when Redis is unreachable, the connection dropped or the
 * command timed out.  It is freed by hiredis when the handler returns.
 */
typedef void (
    *ngx_http_telehealth_redis_handler_pt)(void *data, redisReply *reply);


ngx_int_t ngx_http_telehealth_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                          *mcf);
void ngx_http_telehealth_redis_exit_process(void);

/*
 * Sends a command.  NGX_OK: the handler will be called, unless pool (the
 * owner of data, may be NULL) is destroyed first.  NGX_DECLINED: Redis is
 * down; the handler is not called.
 */
ngx_int_t ngx_http_telehealth_redis_command(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_telehealth_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);

/* a key from a th_names.h format and one id, with the configured prefix */
char *ngx_http_telehealth_redis_key(ngx_pool_t *pool, const char *fmt,
    const char *id);

ngx_uint_t ngx_http_telehealth_redis_available(void);

/*
 * One subscription per worker, on a connection of its own: handler gets
 * each message (and the confirmation) of channel, and NULL whenever the
 * connection is lost; it is made again with back-off.
 */
ngx_int_t ngx_http_telehealth_redis_subscribe(ngx_cycle_t *cycle,
    const char *channel, ngx_http_telehealth_redis_handler_pt handler,
    void *data);


#endif /* _NGX_HTTP_TELEHEALTH_REDIS_H_INCLUDED_ */
