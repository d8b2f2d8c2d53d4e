/*
 * nginx connections around a library's socket, shared by the PostgreSQL
 * pool, the Redis client and the HTTP client: one way to take a
 * connection for a socket and one to give it back.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_telehealth_conn.h"


ngx_connection_t *
ngx_http_telehealth_conn_wrap(ngx_socket_t fd, ngx_log_t *log, void *data,
    ngx_event_handler_pt handler)
{
    ngx_connection_t *c;

    c = ngx_get_connection(fd, log);
    if (c == NULL) {
        return NULL;
    }

    c->data = data;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->read->handler = handler;
    c->write->handler = handler;

    return c;
}


void
ngx_http_telehealth_conn_release(ngx_connection_t *c, ngx_uint_t flags)
{
    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, flags);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* the socket is the library's: not ngx_close_connection() */
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}
