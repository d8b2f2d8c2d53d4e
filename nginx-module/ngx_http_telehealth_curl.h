/*
 * HTTP and SMTP requests without blocking the worker: libcurl's
 * multi-socket API driven by the worker's event loop (its sockets
 * registered as nginx connections) and one nginx timer.  One multi handle
 * per worker.
 */

#ifndef _NGX_HTTP_TELEHEALTH_CURL_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <curl/curl.h>


typedef struct ngx_http_telehealth_curl_req_s ngx_http_telehealth_curl_req_t;

/*
 * Called once per request when it ends: result is CURLE_OK when an answer
 * came (status holds its HTTP status), else why not (error is curl's text,
 * never a URL or a body).  The request is freed when the handler returns.
 */
typedef void (*ngx_http_telehealth_curl_handler_pt)(void *data, CURLcode result,
    long status, const char *error);


ngx_int_t ngx_http_telehealth_curl_init_process(ngx_cycle_t *cycle);
void ngx_http_telehealth_curl_exit_process(void);

/*
 * POSTs body (copied) to url with the headers (the list is taken over and
 * freed in every case).  Returns the request, or NULL when it could not be
 * started; then the handler is not called.
 */
ngx_http_telehealth_curl_req_t *ngx_http_telehealth_curl_post(ngx_log_t *log,
    const char *url, struct curl_slist *headers, u_char *body, size_t len,
    ngx_msec_t timeout, ngx_http_telehealth_curl_handler_pt handler,
    void *data);

typedef struct {
    const char *url;     /* smtp:// or smtps:// */
    long        use_ssl; /* CURLUSESSL_* */
    const char *user;    /* NULL: no AUTH */
    const char *password;
    const char *from; /* envelope addresses */
    const char *to;
    ngx_str_t  *trusted; /* CA PEM; NULL: system's */
    ngx_msec_t  timeout;
} ngx_http_telehealth_curl_mail_t;

/*
 * Sends message (an RFC 5322 message with CRLF line ends, copied) over
 * SMTP.  The handler's status is the server's last reply code (0 when it
 * never answered).  NULL when it could not be started.
 */
ngx_http_telehealth_curl_req_t *ngx_http_telehealth_curl_mail(ngx_log_t *log,
    ngx_http_telehealth_curl_mail_t *mail, u_char *message, size_t len,
    ngx_http_telehealth_curl_handler_pt handler, void *data);

/* ends a request without calling its handler */
void ngx_http_telehealth_curl_cancel(ngx_http_telehealth_curl_req_t *req);

/* requests under way in this worker */
ngx_uint_t ngx_http_telehealth_curl_running(void);


#endif /* _NGX_HTTP_TELEHEALTH_CURL_H_INCLUDED_ */
