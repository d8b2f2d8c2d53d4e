/*
 * nginx connections around a library's socket (libpq, hiredis, libcurl):
 * the library reads and writes the socket, nginx's event loop tells it
 * when it may.
 */

#ifndef _NGX_HTTP_TELEHEALTH_CONN_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_CONN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>


/* a connection for fd whose events go to handler; NULL: none free */
ngx_connection_t *ngx_http_telehealth_conn_wrap(ngx_socket_t fd, ngx_log_t *log,
    void *data, ngx_event_handler_pt handler);

/*
 * Gives the connection back without closing the socket, which the library
 * owns.  flags: NGX_CLOSE_EVENT when the library closes the socket right
 * after (closing removes it from epoll), 0 to remove it from epoll now.
 */
void ngx_http_telehealth_conn_release(ngx_connection_t *c, ngx_uint_t flags);


#endif /* _NGX_HTTP_TELEHEALTH_CONN_H_INCLUDED_ */
