/*
 * Chat attachments (docs/api.md, "Chat").
 *
 * Upload: nginx writes the body to a temporary file as it arrives (never
 * the whole file in memory), within telehealth_chat_max_file_size.  Its
 * type is decided by its first bytes (JPEG, PNG, PDF; anything else, or a
 * declared type the bytes contradict, is 415).  The file is renamed into
 * telehealth_chat_files under a new id, the only name it ever has there,
 * and th_api("chat_file_add") checks the caller and writes its row.  With
 * telehealth_clamd the row stays pending, the file goes to clamd
 * (INSTREAM, on the event loop) and becomes visible only when clamd found
 * nothing; otherwise row and file go.  Until the answer, a pool cleanup
 * unlinks the stored file, so no refusal or error leaves one behind.
 *
 * Download: th_api() checks the caller; then the request is redirected to
 * the internal location telehealth_chat_files_location, where nginx sends
 * the file (sendfile), as an X-Accel-Redirect from a backend would.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_chat.h"
#include "ngx_http_telehealth_records.h"


#define NGX_HTTP_TELEHEALTH_CLAMD_CHUNK 65536
#define NGX_HTTP_TELEHEALTH_CLAMD_REPLY 256


typedef struct {
    ngx_http_request_t           *request;
    ngx_str_t                     id;
    ngx_str_t                     path; /* in the store, NUL-ended */
    ngx_file_t                   *file; /* the body's, still open */
    off_t                         size;
    off_t                         sent;
    json_t                       *answer;
    ngx_peer_connection_t         peer;
    ngx_buf_t                    *out;
    u_char                        reply[NGX_HTTP_TELEHEALTH_CLAMD_REPLY];
    size_t                        nreply;
    const char                   *params[2];
    ngx_http_telehealth_pg_req_t *pg;
    unsigned                      kept : 1;
    unsigned                      ended : 1; /* the terminating chunk */
    unsigned                      clean : 1;
    unsigned                      scanned : 1; /* clamd answered */
} ngx_http_telehealth_chat_file_t;


static const char *ngx_http_telehealth_chat_type(u_char *p, size_t n);
static ngx_int_t ngx_http_telehealth_chat_declared(ngx_http_request_t *r,
    const char                                                        *type);
static ngx_int_t ngx_http_telehealth_chat_store(ngx_http_request_t *r,
    ngx_http_telehealth_chat_file_t *cf, ngx_temp_file_t *tf);
static void ngx_http_telehealth_chat_unlink(void *data);
static void ngx_http_telehealth_chat_added(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);
static void ngx_http_telehealth_chat_answer(ngx_http_request_t *r,
    ngx_http_telehealth_chat_file_t                            *cf);
static ngx_int_t ngx_http_telehealth_clamd_connect(ngx_http_request_t *r,
    ngx_http_telehealth_chat_file_t                                   *cf);
static void ngx_http_telehealth_clamd_write(ngx_event_t *wev);
static void ngx_http_telehealth_clamd_read(ngx_event_t *rev);
static ngx_int_t ngx_http_telehealth_clamd_fill(
    ngx_http_telehealth_chat_file_t *cf);
static void ngx_http_telehealth_clamd_done(ngx_http_telehealth_chat_file_t *cf,
    ngx_int_t                                                               rc);
static void ngx_http_telehealth_clamd_close(void *data);
static void ngx_http_telehealth_chat_scanned(ngx_http_telehealth_pg_req_t *pg);


/* $1 file, $2 "true" when clamd found nothing */
static const char ngx_http_telehealth_chat_scanned_sql[] =
    "SELECT th_chat_file_scanned($1::uuid, $2::boolean)";

static const char ngx_http_telehealth_clamd_instream[] = "zINSTREAM";


ngx_int_t
ngx_http_telehealth_chat_read(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt               handler)
{
    ngx_int_t                  rc;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (ctx->mcf->chat.files.len == 0
        || r->headers_in.content_length_n > ctx->mcf->chat.max_file_size)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ctx->mcf->chat.files.len == 0) {
            return ngx_http_telehealth_send_problem(r,
                NGX_HTTP_TELEHEALTH_NOT_FOUND,
                "File attachments are not enabled here.");
        }

        return ngx_http_telehealth_send_problem(r,
            NGX_HTTP_TELEHEALTH_PAYLOAD_TOO_LARGE,
            "The file is larger than allowed.");
    }

    /* kept under its name until renamed; removed with the request */
    r->request_body_in_file_only = 1;
    r->request_body_in_persistent_file = 1;
    r->request_body_in_clean_file = 1;
    r->request_body_file_log_level = 0;

    rc = ngx_http_read_client_request_body(r, handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


void
ngx_http_telehealth_chat_upload(ngx_http_request_t *r)
{
    u_char                           magic[8];
    off_t                            size;
    json_t                          *body;
    ssize_t                          n;
    ngx_str_t                        arg;
    const char                      *type;
    ngx_temp_file_t                 *tf;
    ngx_http_telehealth_ctx_t       *ctx;
    ngx_http_telehealth_chat_file_t *cf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    tf = (r->request_body != NULL) ? r->request_body->temp_file : NULL;

    if (tf == NULL || tf->file.offset == 0) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_VALIDATION,
            "The request carries no file.");
        return;
    }

    /* chunked bodies have no Content-Length to check beforehand */
    size = tf->file.offset;

    if (size > ctx->mcf->chat.max_file_size) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_PAYLOAD_TOO_LARGE,
            "The file is larger than allowed.");
        return;
    }

    n = ngx_read_file(&tf->file, magic, sizeof(magic), 0);
    if (n == NGX_ERROR) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    type = ngx_http_telehealth_chat_type(magic, (size_t) n);

    if (type == NULL || ngx_http_telehealth_chat_declared(r, type) != NGX_OK) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNSUPPORTED_MEDIA_TYPE,
            NULL);
        return;
    }

    cf = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_chat_file_t));
    if (cf == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cf->request = r;
    cf->file = &tf->file;
    cf->size = size;

    if (ngx_http_telehealth_chat_store(r, cf, tf) != NGX_OK) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    body = json_pack("{s:s, s:s, s:I, s:b, s:b}", "file_id",
        (char *) cf->id.data, "content_type", type, "size", (json_int_t) size,
        "scan", ctx->mcf->chat.clamd != NULL, "file_to_patient",
        ngx_http_arg(r, (u_char *) "file_to_patient", 15, &arg) == NGX_OK
            && arg.len == 4 && ngx_strncmp(arg.data, "true", 4) == 0);

    if (ngx_http_telehealth_json_track(r->pool, body) == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the row, then the scan or the answer (ngx_http_telehealth_chat_added) */
    ctx->body = body;
    ctx->then = ngx_http_telehealth_chat_added;
    ctx->data = NULL;

    /* records.c keeps its state in ctx->data; ours is found on the pool */
    ngx_http_telehealth_records_handler(r);
}


/* the type by the file's first bytes; NULL: none we take */

static const char *
ngx_http_telehealth_chat_type(u_char *p, size_t n)
{
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) {
        return "image/jpeg";
    }

    if (n >= 8 && ngx_memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) {
        return "image/png";
    }

    if (n >= 5 && ngx_memcmp(p, "%PDF-", 5) == 0) {
        return "application/pdf";
    }

    return NULL;
}


/* a declared Content-Type of ours must be the one the bytes show */

static ngx_int_t
ngx_http_telehealth_chat_declared(ngx_http_request_t *r, const char *type)
{
    size_t             len;
    ngx_str_t         *v;
    ngx_uint_t         i;
    static const char *ours[] = { "image/jpeg", "image/png", "application/pdf",
        NULL };

    if (r->headers_in.content_type == NULL) {
        return NGX_OK;
    }

    v = &r->headers_in.content_type->value;

    for (len = 0; len < v->len; len++) {
        if (v->data[len] == ';' || v->data[len] == ' ') {
            break;
        }
    }

    for (i = 0; ours[i]; i++) {
        if (len == ngx_strlen(ours[i])
            && ngx_strncasecmp(v->data, (u_char *) ours[i], len) == 0)
        {
            return ngx_strcmp(ours[i], type) == 0 ? NGX_OK : NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* renames the body's file into the store as <dir>/<new id> */

static ngx_int_t
ngx_http_telehealth_chat_store(ngx_http_request_t *r,
    ngx_http_telehealth_chat_file_t *cf, ngx_temp_file_t *tf)
{
    ngx_str_t                 *dir;
    ngx_pool_cleanup_t        *cln;
    ngx_ext_rename_file_t      ext;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    dir = &ctx->mcf->chat.files;

    if (ngx_http_telehealth_new_uuid(r->pool, &cf->id) != NGX_OK) {
        return NGX_ERROR;
    }

    cf->path.len = dir->len + 1 + cf->id.len;
    cf->path.data = ngx_pnalloc(r->pool, cf->path.len + 1);
    if (cf->path.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cf->path.data, "%V/%V%Z", dir, &cf->id);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ext.access = 0600;
    ext.path_access = 0700;
    ext.time = -1;
    ext.create_path = 0;
    ext.delete_file = 1;
    ext.fd = tf->file.fd;
    ext.log = r->connection->log;

    if (ngx_ext_rename_file(&tf->file.name, &cf->path, &ext) != NGX_OK) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_telehealth_chat_unlink;
    cln->data = cf;

    return NGX_OK;
}


static void
ngx_http_telehealth_chat_unlink(void *data)
{
    ngx_http_telehealth_chat_file_t *cf = data;

    if (cf->kept) {
        return;
    }

    if (ngx_delete_file(cf->path.data) == NGX_FILE_ERROR
        && ngx_errno != NGX_ENOENT)
    {
        ngx_log_error(NGX_LOG_CRIT, ngx_cycle->log, ngx_errno,
            ngx_delete_file_n " \"%s\" failed", cf->path.data);
    }
}


static ngx_http_telehealth_chat_file_t *
ngx_http_telehealth_chat_file(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t *cln;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_telehealth_chat_unlink) {
            return cln->data;
        }
    }

    return NULL;
}


/* the row is written: scan, or answer */

static void
ngx_http_telehealth_chat_added(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    ngx_http_telehealth_ctx_t       *ctx;
    ngx_http_telehealth_chat_file_t *cf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    cf = ngx_http_telehealth_chat_file(r);

    if (cf == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cf->answer = ngx_http_telehealth_json_track(r->pool, json_incref(body));
    if (cf->answer == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->mcf->chat.clamd == NULL) {
        ngx_http_telehealth_chat_answer(r, cf);
        return;
    }

    if (ngx_http_telehealth_clamd_connect(r, cf) != NGX_OK) {
        ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
    }
}


static void
ngx_http_telehealth_chat_answer(ngx_http_request_t *r,
    ngx_http_telehealth_chat_file_t                *cf)
{
    cf->kept = 1;

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_CREATED,
            json_incref(cf->answer)));
}


/* clamd: INSTREAM of the stored file over its socket, never blocking */

static ngx_int_t
ngx_http_telehealth_clamd_connect(ngx_http_request_t *r,
    ngx_http_telehealth_chat_file_t                  *cf)
{
    ngx_int_t                  rc;
    ngx_url_t                 *u;
    ngx_connection_t          *c;
    ngx_pool_cleanup_t        *cln;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    u = ctx->mcf->chat.clamd;

    cf->out = ngx_create_temp_buf(r->pool, NGX_HTTP_TELEHEALTH_CLAMD_CHUNK + 4);
    if (cf->out == NULL) {
        return NGX_ERROR;
    }

    cf->out->last =
        ngx_cpymem(cf->out->last, ngx_http_telehealth_clamd_instream,
            sizeof(ngx_http_telehealth_clamd_instream));

    cf->peer.sockaddr = u->addrs[0].sockaddr;
    cf->peer.socklen = u->addrs[0].socklen;
    cf->peer.name = &u->addrs[0].name;
    cf->peer.get = ngx_event_get_peer;
    cf->peer.log = r->connection->log;
    cf->peer.log_error = NGX_ERROR_ERR;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_telehealth_clamd_close;
    cln->data = cf;

    rc = ngx_event_connect_peer(&cf->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
            "telehealth: cannot connect to clamd at \"%V\"", &u->url);
        return NGX_ERROR;
    }

    c = cf->peer.connection;
    c->data = cf;
    c->pool = r->pool;
    c->read->handler = ngx_http_telehealth_clamd_read;
    c->write->handler = ngx_http_telehealth_clamd_write;

    ngx_add_timer(c->write, ctx->mcf->chat.clamd_timeout);

    if (rc == NGX_OK) {
        ngx_http_telehealth_clamd_write(c->write);
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_clamd_write(ngx_event_t *wev)
{
    ssize_t                          n;
    ngx_connection_t                *c;
    ngx_http_telehealth_ctx_t       *ctx;
    ngx_http_telehealth_chat_file_t *cf;

    c = wev->data;
    cf = c->data;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
            "telehealth: clamd timed out");
        ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
        return;
    }

    for (;;) {

        if (cf->out->pos == cf->out->last) {
            if (cf->ended) {
                break;
            }

            if (ngx_http_telehealth_clamd_fill(cf) != NGX_OK) {
                ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
                return;
            }
        }

        n = c->send(c, cf->out->pos, cf->out->last - cf->out->pos);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
            }

            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
            return;
        }

        cf->out->pos += n;
    }

    /* all sent: the verdict comes back on the read side */
    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    ctx = ngx_http_get_module_ctx(cf->request, ngx_http_telehealth_module);

    ngx_add_timer(c->read, ctx->mcf->chat.clamd_timeout);

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
        return;
    }

    if (c->read->ready) {
        ngx_http_telehealth_clamd_read(c->read);
    }
}


/* the next chunk: 4 bytes of length (network order) and the bytes */

static ngx_int_t
ngx_http_telehealth_clamd_fill(ngx_http_telehealth_chat_file_t *cf)
{
    size_t     len;
    ssize_t    n;
    ngx_buf_t *b;

    b = cf->out;
    b->pos = b->start;
    b->last = b->start;

    len =
        (size_t) ngx_min(cf->size - cf->sent, NGX_HTTP_TELEHEALTH_CLAMD_CHUNK);

    if (len > 0) {
        n = ngx_read_file(cf->file, b->start + 4, len, cf->sent);
        if (n != (ssize_t) len) {
            return NGX_ERROR;
        }

        cf->sent += len;

    } else {
        cf->ended = 1;
    }

    b->start[0] = (u_char) (len >> 24);
    b->start[1] = (u_char) (len >> 16);
    b->start[2] = (u_char) (len >> 8);
    b->start[3] = (u_char) len;
    b->last = b->start + 4 + len;

    return NGX_OK;
}


/* "stream: OK", or "stream: <name> FOUND", NUL-terminated (zINSTREAM) */

static void
ngx_http_telehealth_clamd_read(ngx_event_t *rev)
{
    u_char                          *p;
    ssize_t                          n;
    ngx_connection_t                *c;
    ngx_http_telehealth_chat_file_t *cf;

    c = rev->data;
    cf = c->data;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
            "telehealth: clamd timed out");
        ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
        return;
    }

    for (;;) {
        n = c->recv(c, cf->reply + cf->nreply,
            sizeof(cf->reply) - 1 - cf->nreply);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
            }

            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
            return;
        }

        cf->nreply += n;

        p = ngx_strlchr(cf->reply, cf->reply + cf->nreply, '\0');

        if (p != NULL || n == 0 || cf->nreply == sizeof(cf->reply) - 1) {
            break;
        }
    }

    cf->reply[cf->nreply] = '\0';
    cf->nreply = ngx_strlen(cf->reply);

    if (cf->nreply >= sizeof(" OK") - 1
        && ngx_strcmp(cf->reply + cf->nreply - 3, " OK") == 0)
    {
        cf->clean = 1;
        ngx_http_telehealth_clamd_done(cf, NGX_OK);
        return;
    }

    if (cf->nreply >= sizeof(" FOUND") - 1
        && ngx_strcmp(cf->reply + cf->nreply - 6, " FOUND") == 0)
    {
        ngx_log_error(NGX_LOG_NOTICE, c->log, 0,
            "telehealth: clamd refused file %V: %s", &cf->id, cf->reply);
        ngx_http_telehealth_clamd_done(cf, NGX_OK);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, c->log, 0, "telehealth: clamd answered \"%s\"",
        cf->reply);
    ngx_http_telehealth_clamd_done(cf, NGX_ERROR);
}


/* the verdict (or none, rc NGX_ERROR) goes to PostgreSQL */

static void
ngx_http_telehealth_clamd_done(ngx_http_telehealth_chat_file_t *cf,
    ngx_int_t                                                   rc)
{
    ngx_http_request_t *r;

    r = cf->request;

    ngx_http_telehealth_clamd_close(cf);

    if (rc != NGX_OK) {
        cf->clean = 0;
    }

    cf->params[0] = (char *) cf->id.data;
    cf->params[1] = cf->clean ? "true" : "false";

    cf->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (cf->pg == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cf->pg->handler = ngx_http_telehealth_chat_scanned;
    cf->pg->data = cf;

    /* a scan that did not happen answers 503 (the file is not kept) */
    cf->scanned = (rc == NGX_OK);

    if (ngx_http_telehealth_pg_query(cf->pg,
            ngx_http_telehealth_chat_scanned_sql, 2, cf->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_chat_scanned(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_request_t              *r;
    ngx_http_telehealth_chat_file_t *cf;

    cf = pg->data;
    r = cf->request;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    if (!cf->scanned) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE,
            "The file could not be checked for "
            "malware. Please try again shortly.");
        return;
    }

    if (!cf->clean) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_MALWARE, NULL);
        return;
    }

    ngx_http_telehealth_chat_answer(r, cf);
}


static void
ngx_http_telehealth_clamd_close(void *data)
{
    ngx_http_telehealth_chat_file_t *cf = data;

    if (cf->peer.connection != NULL) {
        ngx_close_connection(cf->peer.connection);
        cf->peer.connection = NULL;
    }
}


/* GET .../files/{file}: allowed; nginx sends it from the internal location */

void
ngx_http_telehealth_chat_send(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    u_char                    *p;
    size_t                     len;
    json_t                    *id, *type, *name;
    ngx_str_t                  uri, *loc;
    ngx_connection_t          *c;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    loc = &ctx->mcf->chat.location;
    c = r->connection;

    id = json_object_get(body, "id");
    type = json_object_get(body, "content_type");
    name = json_object_get(body, "filename");

    if (!json_is_string(id) || !json_is_string(type) || !json_is_string(name)
        || ctx->mcf->chat.files.len == 0)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    uri.len = loc->len + json_string_length(id);
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(ngx_cpymem(uri.data, loc->data, loc->len), json_string_value(id),
        json_string_length(id));

    len = json_string_length(type);
    r->headers_out.content_type.data = ngx_pnalloc(r->pool, len);
    if (r->headers_out.content_type.data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(r->headers_out.content_type.data, json_string_value(type), len);
    r->headers_out.content_type.len = len;
    r->headers_out.content_type_len = len;
    r->headers_out.content_type_lowcase = NULL;

    len = sizeof("attachment; filename=\"\"") - 1 + json_string_length(name);
    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_sprintf(p, "attachment; filename=\"%s\"", json_string_value(name));

    /* the name is ours (the id and an extension), never the client's */
    if (ngx_http_telehealth_add_header(r, "Content-Disposition", p, len)
            != NGX_OK
        || ngx_http_telehealth_add_header(r, "X-Content-Type-Options",
               (u_char *) "nosniff", 7)
               != NGX_OK
        || ngx_http_telehealth_add_header(r, "Cache-Control",
               (u_char *) "private, no-store", 17)
               != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    (void) status;

    /* what X-Accel-Redirect does for a backend's answer */
    ngx_http_internal_redirect(r, &uri, NULL);
    ngx_http_finalize_request(r, NGX_DONE);
    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_http_telehealth_chat_remove(ngx_http_telehealth_main_conf_t *mcf,
    const char *id, ngx_log_t *log)
{
    u_char     path[NGX_MAX_PATH];
    ngx_str_t *dir;

    dir = &mcf->chat.files;

    if (dir->len == 0 || !ngx_http_telehealth_is_uuid(id, ngx_strlen(id))
        || dir->len + 1 + NGX_HTTP_TELEHEALTH_UUID_LEN + 1 > sizeof(path))
    {
        return NGX_ERROR;
    }

    ngx_sprintf(path, "%V/%s%Z", dir, id);

    if (ngx_delete_file(path) == NGX_FILE_ERROR && ngx_errno != NGX_ENOENT) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
            ngx_delete_file_n " \"%s\" failed", path);
        return NGX_ERROR;
    }

    return NGX_OK;
}


char *
ngx_http_telehealth_clamd(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    ngx_str_t *value;
    ngx_url_t *u;

    if (mcf->chat.clamd != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    u = ngx_pcalloc(cf->pool, sizeof(ngx_url_t));
    if (u == NULL) {
        return NGX_CONF_ERROR;
    }

    u->url = value[1];
    u->no_resolve = 1;

    if (ngx_parse_url(cf->pool, u) != NGX_OK || u->naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_clamd\" needs \"unix:/path\" or a "
            "numeric address and port, not \"%V\"%s%s",
            &value[1], u->err ? ": " : "", u->err ? u->err : "");
        return NGX_CONF_ERROR;
    }

    mcf->chat.clamd = u;

    return NGX_CONF_OK;
}
