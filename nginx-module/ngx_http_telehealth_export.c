/*
 * GET /sessions/{id}/export.pdf (docs/features.md 31, docs/api.md): the
 * record of a session for its chairs while its content exists.
 * PostgreSQL answers what it shows as one JSON document
 * (th_session_export(), sql/functions/export.sql); libharu lays it out
 * with a TrueType font (telehealth_export_font, DejaVu Sans by default:
 * every script of the templates' languages renders).
 *
 * The layout runs on the thread pool (telehealth_thread_pool): reading
 * and embedding the font and the images and compressing the pages take
 * milliseconds per page, which the event loop must not wait for.  The
 * task lives in a pool of its own: a client that goes away frees the
 * request while the thread may still be writing; the request's cleanup
 * only disarms the completion.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hpdf.h>

#include "ngx_http_telehealth_export.h"
#include "ngx_http_telehealth_session_shared.h"


/* A4 in points; margins, sizes */
#define NGX_HTTP_TELEHEALTH_PDF_WIDTH  595.0f
#define NGX_HTTP_TELEHEALTH_PDF_HEIGHT 842.0f
#define NGX_HTTP_TELEHEALTH_PDF_MARGIN 56.0f
#define NGX_HTTP_TELEHEALTH_PDF_TEXT   10.0f
#define NGX_HTTP_TELEHEALTH_PDF_HEAD   13.0f
#define NGX_HTTP_TELEHEALTH_PDF_TITLE  18.0f
#define NGX_HTTP_TELEHEALTH_PDF_IMAGE  240.0f /* largest side shown */


typedef struct {
    ngx_pool_t         *pool;
    ngx_http_request_t *request;
    ngx_pool_cleanup_t *cleanup;
    json_t             *doc;       /* th_session_export()'s */
    const char         *font;      /* TrueType file */
    ngx_str_t           files_dir; /* attachments' paths are
                                               relative to it */

    /* the layout's state, on the thread */
    HPDF_Doc    pdf;
    HPDF_Page   page;
    HPDF_Font   regular;
    float       y;
    HPDF_STATUS error;

    /* the result */
    u_char *out;
    size_t  out_len;
} ngx_http_telehealth_export_t;


/* $1 caller, $2 org, $3 "staff", $4 session, $5 address */
static const char ngx_http_telehealth_export_sql[] =
    "SELECT status, body FROM th_session_export($1, $2, $3, $4, $5)";


static void ngx_http_telehealth_export_found(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_export_thread(void *data, ngx_log_t *log);
static void ngx_http_telehealth_export_done(ngx_event_t *ev);
static void ngx_http_telehealth_export_disarm(void *data);
static void ngx_http_telehealth_export_free(void *data);
static void HPDF_STDCALL ngx_http_telehealth_export_error(HPDF_STATUS error,
    HPDF_STATUS detail, void *data);
static void ngx_http_telehealth_export_layout(ngx_http_telehealth_export_t *ex);
static void ngx_http_telehealth_export_line(ngx_http_telehealth_export_t *ex,
    float size, float indent, const char *text);
static void ngx_http_telehealth_export_space(ngx_http_telehealth_export_t *ex,
    float height);
static void ngx_http_telehealth_export_image(ngx_http_telehealth_export_t *ex,
    const char *type, const char *path);
static const char *ngx_http_telehealth_export_str(json_t *o, const char *key,
    const char *none);


/* GET /sessions/{id}/export.pdf */

void
ngx_http_telehealth_export_pdf(ngx_http_request_t *r)
{
    const char               **params;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (!ctx->caller.staff) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_FORBIDDEN,
            "Only staff can export a session.");
        return;
    }

    params = ngx_pcalloc(r->pool, 5 * sizeof(char *));
    if (params == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_session_query(r, ngx_http_telehealth_export_sql, params,
        1, ngx_http_telehealth_export_found);
}


static void
ngx_http_telehealth_export_found(ngx_http_telehealth_pg_req_t *pg)
{
    json_t                          *doc;
    ngx_int_t                        status;
    ngx_pool_t                      *pool;
    ngx_thread_task_t               *task;
    ngx_http_request_t              *r = pg->data;
    ngx_pool_cleanup_t              *cln;
    ngx_http_telehealth_ctx_t       *ctx;
    ngx_http_telehealth_export_t    *ex;
    ngx_http_telehealth_main_conf_t *mcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    mcf = ctx->mcf;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    if (PQntuples(pg->result) != 1) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(pg->result, 0, 0),
        PQgetlength(pg->result, 0, 0));
    doc = json_loads(PQgetvalue(pg->result, 0, 1), 0, NULL);

    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (status != NGX_HTTP_OK) {
        ngx_http_telehealth_json_track(r->pool, doc);
        ngx_http_telehealth_fail(r,
            ngx_http_telehealth_problem_named(
                ngx_http_telehealth_export_str(doc, "problem", "internal")),
            ngx_http_telehealth_export_str(doc, "detail", NULL));
        return;
    }

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, ngx_cycle->log);
    if (pool == NULL) {
        json_decref(doc);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    task = ngx_thread_task_alloc(pool, sizeof(ngx_http_telehealth_export_t));
    cln = ngx_pool_cleanup_add(pool, 0);

    if (task == NULL || cln == NULL) {
        json_decref(doc);
        ngx_destroy_pool(pool);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ex = task->ctx;
    ex->pool = pool;
    ex->request = r;
    ex->doc = doc;
    ex->font = (const char *) mcf->export_font.data;

    /* chat's store (telehealth_chat_files): attachments by their id */
    ex->files_dir = mcf->chat.files;

    cln->handler = ngx_http_telehealth_export_free;
    cln->data = ex;

    task->handler = ngx_http_telehealth_export_thread;
    task->event.handler = ngx_http_telehealth_export_done;
    task->event.data = ex;
    task->event.log = ngx_cycle->log; /* may outlive the connection */

    ex->cleanup = ngx_pool_cleanup_add(r->pool, 0);
    if (ex->cleanup == NULL) {
        ngx_destroy_pool(pool);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_thread_task_post(mcf->thread_pool, task) != NGX_OK) {
        ex->cleanup = NULL;
        ngx_destroy_pool(pool);
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    ex->cleanup->handler = ngx_http_telehealth_export_disarm;
    ex->cleanup->data = ex;
}


/* the request went away: the completion only frees the task */

static void
ngx_http_telehealth_export_disarm(void *data)
{
    ngx_http_telehealth_export_t *ex = data;

    ex->request = NULL;
}


static void
ngx_http_telehealth_export_free(void *data)
{
    ngx_http_telehealth_export_t *ex = data;

    json_decref(ex->doc);

    if (ex->out != NULL) {
        ngx_free(ex->out);
    }
}


static void
ngx_http_telehealth_export_done(ngx_event_t *ev)
{
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_chain_t                   out;
    ngx_http_request_t           *r;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_export_t *ex = ev->data;
    u_char disposition[sizeof("attachment; "
                              "filename=\"session-.pdf\"")
                       + NGX_HTTP_TELEHEALTH_UUID_LEN];

    r = ex->request;

    if (r == NULL) {
        ngx_destroy_pool(ex->pool);
        return;
    }

    ex->cleanup->handler = NULL;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (ex->out == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
            "telehealth: export of session %V failed: libharu "
            "error 0x%04xd",
            &ctx->id, (ngx_uint_t) ex->error);
        ngx_destroy_pool(ex->pool);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b = ngx_create_temp_buf(r->pool, ex->out_len);
    if (b == NULL) {
        ngx_destroy_pool(ex->pool);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b->last = ngx_cpymem(b->last, ex->out, ex->out_len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    ngx_destroy_pool(ex->pool);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/pdf");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_telehealth_add_header(r, "Cache-Control",
            (u_char *) "no-store", 8)
            != NGX_OK
        || ngx_http_telehealth_add_header(r, "Content-Disposition", disposition,
               ngx_sprintf(disposition,
                   "attachment; filename=\"session-%V.pdf\"", &ctx->id)
                   - disposition)
               != NGX_OK
        || ngx_http_telehealth_add_header(r, "X-Content-Type-Options",
               (u_char *) "nosniff", 7)
               != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_telehealth_finalize(r, rc);
        return;
    }

    out.buf = b;
    out.next = NULL;

    ngx_http_telehealth_finalize(r, ngx_http_output_filter(r, &out));
}


/* on a thread: nothing here touches nginx but the task's own memory */

static void
ngx_http_telehealth_export_thread(void *data, ngx_log_t *log)
{
    HPDF_UINT32                   size;
    ngx_http_telehealth_export_t *ex = data;

    ex->pdf = HPDF_New(ngx_http_telehealth_export_error, ex);
    if (ex->pdf == NULL) {
        return;
    }

    HPDF_SetCompressionMode(ex->pdf, HPDF_COMP_ALL);
    HPDF_UseUTFEncodings(ex->pdf);
    HPDF_SetCurrentEncoder(ex->pdf, "UTF-8");
    HPDF_SetInfoAttr(ex->pdf, HPDF_INFO_CREATOR, "telehealth");

    ex->regular = HPDF_GetFont(ex->pdf,
        HPDF_LoadTTFontFromFile(ex->pdf, ex->font, HPDF_TRUE), "UTF-8");

    if (ex->error == HPDF_OK && ex->regular != NULL) {
        ngx_http_telehealth_export_layout(ex);
    }

    if (ex->error == HPDF_OK && HPDF_SaveToStream(ex->pdf) == HPDF_OK) {
        size = HPDF_GetStreamSize(ex->pdf);
        ex->out = ngx_alloc(size ? size : 1, log);

        if (ex->out != NULL
            && HPDF_ReadFromStream(ex->pdf, ex->out, &size) != HPDF_OK
            && ex->error != HPDF_OK)
        {
            ngx_free(ex->out);
            ex->out = NULL;

        } else if (ex->out != NULL) {
            ex->out_len = size;
        }
    }

    HPDF_Free(ex->pdf);
    ex->pdf = NULL;
}


static void HPDF_STDCALL
ngx_http_telehealth_export_error(HPDF_STATUS error, HPDF_STATUS detail,
    void *data)
{
    ngx_http_telehealth_export_t *ex = data;

    /* the first error counts; libharu goes on returning errors after it */
    if (ex->error == HPDF_OK) {
        ex->error = error;
    }
}


static void
ngx_http_telehealth_export_layout(ngx_http_telehealth_export_t *ex)
{
    char        line[512];
    json_t     *session, *list, *item, *atts, *att;
    size_t      i, j;
    const char *zone;

    session = json_object_get(ex->doc, "session");
    zone = ngx_http_telehealth_export_str(ex->doc, "time_zone", "UTC");

    ex->page = NULL;
    ex->y = 0;

    ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TITLE, 0,
        ngx_http_telehealth_export_str(session, "name", "Session record"));
    ngx_http_telehealth_export_space(ex, 6);

    ngx_snprintf((u_char *) line, sizeof(line) - 1, "%s%Z",
        ngx_http_telehealth_export_str(ex->doc, "organisation", ""));
    ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TEXT, 0, line);

    ngx_snprintf((u_char *) line, sizeof(line) - 1, "Session %s (%s)%Z",
        ngx_http_telehealth_export_str(session, "id", ""),
        ngx_http_telehealth_export_str(session, "kind", ""));
    ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TEXT, 0, line);

    ngx_snprintf((u_char *) line, sizeof(line) - 1, "Started: %s (%s)%Z",
        ngx_http_telehealth_export_str(session, "started", "-"), zone);
    ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TEXT, 0, line);

    ngx_snprintf((u_char *) line, sizeof(line) - 1, "Ended: %s%Z",
        ngx_http_telehealth_export_str(session, "ended", "not yet"));
    ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TEXT, 0, line);

    ngx_http_telehealth_export_space(ex, 10);
    ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_HEAD, 0,
        "Participants");

    list = json_object_get(ex->doc, "participants");

    json_array_foreach (list, i, item) {
        ngx_snprintf((u_char *) line, sizeof(line) - 1, "%s (%s)%Z",
            ngx_http_telehealth_export_str(item, "name", "?"),
            ngx_http_telehealth_export_str(item, "role", ""));
        ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TEXT, 12,
            line);
    }

    ngx_http_telehealth_export_space(ex, 10);
    ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_HEAD, 0,
        "Chat");

    list = json_object_get(ex->doc, "messages");

    if (json_array_size(list) == 0) {
        ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TEXT, 12,
            "No messages.");
    }

    json_array_foreach (list, i, item) {
        ngx_snprintf((u_char *) line, sizeof(line) - 1, "%s  %s%Z",
            ngx_http_telehealth_export_str(item, "at", ""),
            ngx_http_telehealth_export_str(item, "author", "?"));
        ngx_http_telehealth_export_space(ex, 4);
        ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TEXT, 0,
            line);

        if (json_is_string(json_object_get(item, "text"))) {
            ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TEXT,
                12, json_string_value(json_object_get(item, "text")));
        }

        atts = json_object_get(item, "attachments");

        json_array_foreach (atts, j, att) {
            ngx_snprintf((u_char *) line, sizeof(line) - 1,
                "Attachment: %s (%s)%Z",
                ngx_http_telehealth_export_str(att, "name", "file"),
                ngx_http_telehealth_export_str(att, "type", ""));
            ngx_http_telehealth_export_line(ex, NGX_HTTP_TELEHEALTH_PDF_TEXT,
                12, line);
            ngx_http_telehealth_export_image(ex,
                ngx_http_telehealth_export_str(att, "type", ""),
                ngx_http_telehealth_export_str(att, "path", NULL));
        }
    }
}


/* a new page when the next height does not fit */

static void
ngx_http_telehealth_export_space(ngx_http_telehealth_export_t *ex, float height)
{
    if (ex->page != NULL && ex->y - height >= NGX_HTTP_TELEHEALTH_PDF_MARGIN) {
        ex->y -= height;
        return;
    }

    ex->page = HPDF_AddPage(ex->pdf);
    HPDF_Page_SetWidth(ex->page, NGX_HTTP_TELEHEALTH_PDF_WIDTH);
    HPDF_Page_SetHeight(ex->page, NGX_HTTP_TELEHEALTH_PDF_HEIGHT);
    ex->y = NGX_HTTP_TELEHEALTH_PDF_HEIGHT - NGX_HTTP_TELEHEALTH_PDF_MARGIN
            - height;
}


/* text wrapped at words (or anywhere in a word longer than a line) */

static void
ngx_http_telehealth_export_line(ngx_http_telehealth_export_t *ex, float size,
    float indent, const char *text)
{
    char     *chunk;
    size_t    len, n;
    HPDF_REAL width, used;

    width = NGX_HTTP_TELEHEALTH_PDF_WIDTH - 2 * NGX_HTTP_TELEHEALTH_PDF_MARGIN
            - indent;
    len = ngx_strlen(text);

    chunk = ngx_alloc(len + 1, ngx_cycle->log);
    if (chunk == NULL) {
        ex->error = HPDF_FAILD_TO_ALLOC_MEM;
        return;
    }

    do {
        ngx_http_telehealth_export_space(ex, size * 1.35f);
        if (ex->error != HPDF_OK) {
            break;
        }

        HPDF_Page_SetFontAndSize(ex->page, ex->regular, size);

        n = HPDF_Page_MeasureText(ex->page, text, width, HPDF_TRUE, &used);
        if (n == 0) {
            n = HPDF_Page_MeasureText(ex->page, text, width, HPDF_FALSE, &used);
        }

        if (n == 0 || n > len) {
            n = len;
        }

        /* never split a UTF-8 sequence */
        while (n < len && n > 1 && ((u_char) text[n] & 0xc0) == 0x80) {
            n--;
        }

        ngx_memcpy(chunk, text, n);
        chunk[n] = '\0';

        HPDF_Page_BeginText(ex->page);
        HPDF_Page_TextOut(ex->page, NGX_HTTP_TELEHEALTH_PDF_MARGIN + indent,
            ex->y, chunk);
        HPDF_Page_EndText(ex->page);

        text += n;
        len -= n;

        while (len && (*text == ' ' || *text == '\n')) {
            text++;
            len--;
        }

    } while (len && ex->error == HPDF_OK);

    ngx_free(chunk);
}


/* an attached image, scaled down to fit; other files are only listed */

static void
ngx_http_telehealth_export_image(ngx_http_telehealth_export_t *ex,
    const char *type, const char *path)
{
    char        file[NGX_MAX_PATH];
    float       w, h, scale;
    HPDF_Image  image;
    HPDF_STATUS prior;

    /* a name of the files directory, or an absolute path */
    if (path == NULL || ngx_strstr(path, "..") != NULL
        || (path[0] != '/' && ex->files_dir.len == 0)
        || ex->files_dir.len + ngx_strlen(path) + 2 > sizeof(file))
    {
        return;
    }

    if (path[0] != '/') {
        ngx_sprintf((u_char *) file, "%V/%s%Z", &ex->files_dir, path);
        path = file;
    }

    prior = ex->error;

    if (ngx_strcmp(type, "image/png") == 0) {
        image = HPDF_LoadPngImageFromFile(ex->pdf, path);

    } else if (ngx_strcmp(type, "image/jpeg") == 0) {
        image = HPDF_LoadJpegImageFromFile(ex->pdf, path);

    } else {
        return;
    }

    if (image == NULL) {
        /* a file gone or broken is listed without its picture */
        ex->error = prior;
        HPDF_ResetError(ex->pdf);
        return;
    }

    w = HPDF_Image_GetWidth(image);
    h = HPDF_Image_GetHeight(image);
    scale = ngx_max(w, h) > NGX_HTTP_TELEHEALTH_PDF_IMAGE
                ? NGX_HTTP_TELEHEALTH_PDF_IMAGE / ngx_max(w, h)
                : 1.0f;

    ngx_http_telehealth_export_space(ex, h * scale + 4);
    HPDF_Page_DrawImage(ex->page, image, NGX_HTTP_TELEHEALTH_PDF_MARGIN + 12,
        ex->y, w * scale, h * scale);
}


static const char *
ngx_http_telehealth_export_str(json_t *o, const char *key, const char *none)
{
    json_t *v;

    v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : none;
}
