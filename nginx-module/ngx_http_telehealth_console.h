/*
 * The staff console's event stream (GET /me/events, server-sent events)
 * and its single-use tickets for browsers (POST /me/events/ticket).
 *
 * Rows of console_events (sql/009_console.sql) are announced by NOTIFY on
 * commit; every worker LISTENs on its own connection and writes each event
 * to the streams of its recipient held by that worker.
 */

#ifndef _NGX_HTTP_TELEHEALTH_CONSOLE_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_CONSOLE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_module.h"


ngx_int_t ngx_http_telehealth_console_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                            *mcf);
void ngx_http_telehealth_console_exit_process(void);
/* streams this worker has open (metrics.c) */
ngx_uint_t ngx_http_telehealth_console_streams_open(void);

/* GET /me/events: authenticates itself (bearer token or ?ticket=) */
void ngx_http_telehealth_console_events(ngx_http_request_t *r);

/* POST /me/events/ticket */
void ngx_http_telehealth_console_ticket(ngx_http_request_t *r);


#endif /* _NGX_HTTP_TELEHEALTH_CONSOLE_H_INCLUDED_ */
