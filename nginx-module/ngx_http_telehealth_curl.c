/*
 * libcurl's multi-socket API on the worker's event loop.
 *
 * libcurl tells which sockets it wants watched (CURLMOPT_SOCKETFUNCTION):
 * each becomes an nginx connection with level-triggered read and write
 * events, whose handlers hand readiness back with
 * curl_multi_socket_action().  libcurl's single timeout
 * (CURLMOPT_TIMERFUNCTION) is one nginx timer.  libcurl itself resolves
 * names in its threaded resolver, so nothing here blocks the worker.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_telehealth_curl.h"
#include "ngx_http_telehealth_conn.h"


struct ngx_http_telehealth_curl_req_s {
    CURL                               *easy;
    struct curl_slist                  *headers;
    char                               *body;
    size_t                              len;
    size_t                              sent; /* of an upload */
    ngx_http_telehealth_curl_handler_pt handler;
    void                               *data;
    ngx_log_t                          *log;
    ngx_queue_t                         queue;
    char                                error[CURL_ERROR_SIZE];
};


typedef struct {
    CURLM      *multi;
    ngx_event_t timer;
    ngx_log_t  *log;
    ngx_queue_t requests;
    ngx_uint_t  nrequests;
} ngx_http_telehealth_curl_t;


static int ngx_http_telehealth_curl_socket(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_telehealth_curl_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_telehealth_curl_event(ngx_event_t *ev);
static void ngx_http_telehealth_curl_timeout(ngx_event_t *ev);
static void ngx_http_telehealth_curl_done(void);
static void ngx_http_telehealth_curl_free(ngx_http_telehealth_curl_req_t *req);
static ngx_http_telehealth_curl_req_t *ngx_http_telehealth_curl_create(ngx_log_t
                                                                           *log,
    struct curl_slist *list, u_char *body, size_t len, const char *url,
    ngx_msec_t timeout, ngx_http_telehealth_curl_handler_pt handler,
    void *data);
static ngx_int_t ngx_http_telehealth_curl_start(
    ngx_http_telehealth_curl_req_t *req);
static void ngx_http_telehealth_curl_abort(ngx_http_telehealth_curl_req_t *req);
static size_t ngx_http_telehealth_curl_discard(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static size_t ngx_http_telehealth_curl_read(char *ptr, size_t size,
    size_t nmemb, void *userdata);


static ngx_http_telehealth_curl_t *ngx_http_telehealth_curl;


ngx_int_t
ngx_http_telehealth_curl_init_process(ngx_cycle_t *cycle)
{
    ngx_http_telehealth_curl_t *hc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
            "telehealth: curl_global_init() failed");
        return NGX_ERROR;
    }

    hc = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_curl_t));
    if (hc == NULL) {
        return NGX_ERROR;
    }

    hc->multi = curl_multi_init();
    if (hc->multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
            "telehealth: curl_multi_init() failed");
        return NGX_ERROR;
    }

    hc->log = cycle->log;
    ngx_queue_init(&hc->requests);

    hc->timer.handler = ngx_http_telehealth_curl_timeout;
    hc->timer.data = hc;
    hc->timer.log = cycle->log;
    hc->timer.cancelable = 1;

    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION,
        ngx_http_telehealth_curl_socket);
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION,
        ngx_http_telehealth_curl_timer);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);

    ngx_http_telehealth_curl = hc;

    return NGX_OK;
}


void
ngx_http_telehealth_curl_exit_process(void)
{
    ngx_queue_t                    *q;
    ngx_http_telehealth_curl_t     *hc;
    ngx_http_telehealth_curl_req_t *req;

    hc = ngx_http_telehealth_curl;
    if (hc == NULL) {
        return;
    }

    while (!ngx_queue_empty(&hc->requests)) {
        q = ngx_queue_head(&hc->requests);
        req = ngx_queue_data(q, ngx_http_telehealth_curl_req_t, queue);
        ngx_http_telehealth_curl_free(req);
    }

    /* closes the cached connections; their sockets are unwatched first */
    curl_multi_cleanup(hc->multi);

    if (hc->timer.timer_set) {
        ngx_del_timer(&hc->timer);
    }

    ngx_http_telehealth_curl = NULL;

    curl_global_cleanup();
}


ngx_http_telehealth_curl_req_t *
ngx_http_telehealth_curl_post(ngx_log_t *log, const char *url,
    struct curl_slist *headers, u_char *body, size_t len, ngx_msec_t timeout,
    ngx_http_telehealth_curl_handler_pt handler, void *data)
{
    CURL                           *easy;
    ngx_http_telehealth_curl_req_t *req;

    req = ngx_http_telehealth_curl_create(log, headers, body, len, url, timeout,
        handler, data);
    if (req == NULL) {
        return NULL;
    }

    easy = req->easy;

    if (curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long) len) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
               ngx_http_telehealth_curl_discard)
               != CURLE_OK
        || ngx_http_telehealth_curl_start(req) != NGX_OK)
    {
        ngx_http_telehealth_curl_abort(req);
        return NULL;
    }

    return req;
}


ngx_http_telehealth_curl_req_t *
ngx_http_telehealth_curl_mail(ngx_log_t *log,
    ngx_http_telehealth_curl_mail_t *mail, u_char *message, size_t len,
    ngx_http_telehealth_curl_handler_pt handler, void *data)
{
    CURL                           *easy;
    struct curl_blob                blob;
    struct curl_slist              *rcpt;
    ngx_http_telehealth_curl_req_t *req;

    if (mail->trusted != NULL) {
        /* copied by libcurl: no file is read in the worker */
        blob.data = mail->trusted->data;
        blob.len = mail->trusted->len;
        blob.flags = CURL_BLOB_COPY;
    }

    rcpt = curl_slist_append(NULL, mail->to);
    if (rcpt == NULL) {
        return NULL;
    }

    req = ngx_http_telehealth_curl_create(log, rcpt, message, len, mail->url,
        mail->timeout, handler, data);
    if (req == NULL) {
        return NULL;
    }

    easy = req->easy;

    if (curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_USE_SSL, mail->use_ssl) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_MAIL_FROM, mail->from) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, req->headers) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_INFILESIZE, (long) len) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_READFUNCTION,
               ngx_http_telehealth_curl_read)
               != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_READDATA, req) != CURLE_OK
        || (mail->trusted != NULL
            && curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob) != CURLE_OK)
        || (mail->user != NULL
            && (curl_easy_setopt(easy, CURLOPT_USERNAME, mail->user) != CURLE_OK
                || curl_easy_setopt(easy, CURLOPT_PASSWORD, mail->password)
                       != CURLE_OK))
        || ngx_http_telehealth_curl_start(req) != NGX_OK)
    {
        ngx_http_telehealth_curl_abort(req);
        return NULL;
    }

    return req;
}


/*
 * A request with what every transfer sets; list (HTTP headers or mail
 * recipients) is taken over and freed in every case.
 */

static ngx_http_telehealth_curl_req_t *
ngx_http_telehealth_curl_create(ngx_log_t *log, struct curl_slist *list,
    u_char *body, size_t len, const char *url, ngx_msec_t timeout,
    ngx_http_telehealth_curl_handler_pt handler, void *data)
{
    CURL                           *easy;
    ngx_http_telehealth_curl_req_t *req;

    if (ngx_http_telehealth_curl == NULL) {
        curl_slist_free_all(list);
        return NULL;
    }

    req = ngx_calloc(sizeof(ngx_http_telehealth_curl_req_t), log);
    if (req == NULL) {
        curl_slist_free_all(list);
        return NULL;
    }

    req->headers = list;
    req->handler = handler;
    req->data = data;
    req->log = log;
    req->len = len;

    req->body = ngx_alloc(len + 1, log);
    if (req->body == NULL) {
        goto failed;
    }

    ngx_memcpy(req->body, body, len);
    req->body[len] = '\0';

    easy = curl_easy_init();
    if (easy == NULL) {
        goto failed;
    }

    req->easy = easy;

    if (curl_easy_setopt(easy, CURLOPT_URL, url) == CURLE_OK
        && curl_easy_setopt(easy, CURLOPT_PRIVATE, req) == CURLE_OK
        && curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->error) == CURLE_OK
        && curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK
        && curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout)
               == CURLE_OK)
    {
        return req;
    }

failed:

    ngx_http_telehealth_curl_abort(req);

    return NULL;
}


static ngx_int_t
ngx_http_telehealth_curl_start(ngx_http_telehealth_curl_req_t *req)
{
    ngx_http_telehealth_curl_t *hc;

    hc = ngx_http_telehealth_curl;

    if (curl_multi_add_handle(hc->multi, req->easy) != CURLM_OK) {
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&hc->requests, &req->queue);
    hc->nrequests++;

    return NGX_OK;
}


/* a request that was never started */

static void
ngx_http_telehealth_curl_abort(ngx_http_telehealth_curl_req_t *req)
{
    ngx_log_error(NGX_LOG_ERR, req->log, 0,
        "telehealth: cannot start a provider request");

    if (req->easy != NULL) {
        curl_easy_cleanup(req->easy);
    }

    curl_slist_free_all(req->headers);

    if (req->body != NULL) {
        ngx_free(req->body);
    }

    ngx_free(req);
}


void
ngx_http_telehealth_curl_cancel(ngx_http_telehealth_curl_req_t *req)
{
    ngx_http_telehealth_curl_free(req);
}


ngx_uint_t
ngx_http_telehealth_curl_running(void)
{
    return ngx_http_telehealth_curl ? ngx_http_telehealth_curl->nrequests : 0;
}


static int
ngx_http_telehealth_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_http_telehealth_curl_t *hc = userp;

    ngx_int_t         want;
    ngx_event_t      *rev, *wev;
    ngx_connection_t *c;

    c = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (c != NULL) {
            curl_multi_assign(hc->multi, s, NULL);
            /* libcurl closes the socket itself, right after this */
            ngx_http_telehealth_conn_release(c, 0);
        }

        return 0;
    }

    if (c == NULL) {
        c = ngx_http_telehealth_conn_wrap(s, hc->log, hc,
            ngx_http_telehealth_curl_event);
        if (c == NULL) {
            return -1;
        }

        if (curl_multi_assign(hc->multi, s, c) != CURLM_OK) {
            ngx_http_telehealth_conn_release(c, 0);
            return -1;
        }
    }

    rev = c->read;
    wev = c->write;

    /* level-triggered: libcurl may leave data in the socket */

    want = what & CURL_POLL_IN;

    if (want && !rev->active) {
        if (ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return -1;
        }

    } else if (!want && rev->active) {
        (void) ngx_del_event(rev, NGX_READ_EVENT, 0);
    }

    want = what & CURL_POLL_OUT;

    if (want && !wev->active) {
        if (ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return -1;
        }

    } else if (!want && wev->active) {
        (void) ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }

    return 0;
}


static int
ngx_http_telehealth_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_http_telehealth_curl_t *hc = userp;

    /* not ngx_add_timer() alone: it would keep a timer that is close */
    if (hc->timer.timer_set) {
        ngx_del_timer(&hc->timer);
    }

    if (timeout_ms >= 0) {
        /* a graceful shutdown (reload) lets transfers under way finish */
        hc->timer.cancelable = (hc->nrequests == 0);
        ngx_add_timer(&hc->timer, (ngx_msec_t) timeout_ms);
    }

    return 0;
}


static void
ngx_http_telehealth_curl_event(ngx_event_t *ev)
{
    int                         running;
    ngx_connection_t           *c;
    ngx_http_telehealth_curl_t *hc;

    c = ev->data;
    hc = c->data;

    /* c may be freed inside: the call can close the socket */
    (void) curl_multi_socket_action(hc->multi, c->fd,
        ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN, &running);

    ngx_http_telehealth_curl_done();
}


static void
ngx_http_telehealth_curl_timeout(ngx_event_t *ev)
{
    int                         running;
    ngx_http_telehealth_curl_t *hc = ev->data;

    (void) curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0,
        &running);

    ngx_http_telehealth_curl_done();
}


/* hands every finished transfer to its handler */

static void
ngx_http_telehealth_curl_done(void)
{
    int                                 left;
    long                                status;
    CURL                               *easy;
    void                               *data;
    CURLMsg                            *msg;
    CURLcode                            result;
    const char                         *error;
    ngx_http_telehealth_curl_t         *hc;
    ngx_http_telehealth_curl_req_t     *req;
    ngx_http_telehealth_curl_handler_pt handler;

    hc = ngx_http_telehealth_curl;

    while (hc != NULL && (msg = curl_multi_info_read(hc->multi, &left)) != NULL)
    {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        easy = msg->easy_handle;
        result = msg->data.result;
        req = NULL;
        status = 0;

        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &req)
                != CURLE_OK
            || req == NULL)
        {
            (void) curl_multi_remove_handle(hc->multi, easy);
            curl_easy_cleanup(easy);
            continue;
        }

        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

        handler = req->handler;
        data = req->data;

        error = NULL;

        if (result != CURLE_OK) {
            error = req->error[0] ? req->error : curl_easy_strerror(result);
        }

        /* the handler may start requests: this one is out of the way */
        req->handler = NULL;
        (void) curl_multi_remove_handle(hc->multi, easy);

        if (handler != NULL) {
            handler(data, result, status, error);
        }

        ngx_http_telehealth_curl_free(req);
    }
}


static void
ngx_http_telehealth_curl_free(ngx_http_telehealth_curl_req_t *req)
{
    ngx_http_telehealth_curl_t *hc;

    hc = ngx_http_telehealth_curl;

    if (req->easy != NULL) {
        if (hc != NULL) {
            (void) curl_multi_remove_handle(hc->multi, req->easy);
        }

        curl_easy_cleanup(req->easy);
    }

    curl_slist_free_all(req->headers);

    if (hc != NULL) {
        ngx_queue_remove(&req->queue);
        hc->nrequests--;
    }

    ngx_free(req->body);
    ngx_free(req);
}


static size_t
ngx_http_telehealth_curl_read(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_telehealth_curl_req_t *req = userdata;

    size_t n;

    n = ngx_min(size * nmemb, req->len - req->sent);

    ngx_memcpy(ptr, req->body + req->sent, n);
    req->sent += n;

    return n;
}


static size_t
ngx_http_telehealth_curl_discard(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    /* a provider's answer body is not needed: the status says it all */
    return size * nmemb;
}
