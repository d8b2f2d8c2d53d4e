/*
 * The e-mail form of a notification (RFC 5322, RFC 2045, RFC 2047).
 *
 * The body goes as base64 so that any UTF-8 text and any line length
 * arrive unchanged; header texts that are not plain ASCII, or are long,
 * become RFC 2047 encoded-words of whole UTF-8 characters.  The
 * Message-ID is a hash of the idempotency key at the sender's domain: a
 * retry after a lost server reply is recognisably the same message.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/sha.h>

#include "ngx_http_telehealth_mail.h"


static ngx_int_t ngx_http_telehealth_conf_read(ngx_conf_t *cf, ngx_str_t *name,
    size_t max, ngx_str_t *out);


/* bytes of text per encoded-word: 56 base64 characters, whole groups */
#define NGX_HTTP_TELEHEALTH_MAIL_WORD 42
#define NGX_HTTP_TELEHEALTH_MAIL_LINE 76


static ngx_uint_t ngx_http_telehealth_mail_plain(ngx_str_t *text);
static u_char *ngx_http_telehealth_mail_words(u_char *p, ngx_str_t *text);


static char *ngx_http_telehealth_mail_week[] = { "Sun", "Mon", "Tue", "Wed",
    "Thu", "Fri", "Sat" };

static char *ngx_http_telehealth_mail_months[] = { "Jan", "Feb", "Mar", "Apr",
    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };


ngx_int_t
ngx_http_telehealth_mail_address(const char *addr)
{
    size_t     len;
    ngx_uint_t i, at;
    u_char     c;

    len = ngx_strlen(addr);

    if (len < 3 || len > 254 || addr[0] == '-') {
        return NGX_ERROR;
    }

    at = 0;

    for (i = 0; i < len; i++) {
        c = (u_char) addr[i];

        if (c <= ' ' || c == 0x7f || ngx_strchr("<>()[],;:\\\"", c) != NULL) {
            return NGX_ERROR;
        }

        if (c == '@') {
            if (at || i == 0 || i == len - 1) {
                return NGX_ERROR;
            }

            at = i;
        }
    }

    return at ? NGX_OK : NGX_ERROR;
}


u_char *
ngx_http_telehealth_mail_message(ngx_pool_t *pool,
    ngx_http_telehealth_email_conf_t *ec, const char *to, ngx_str_t *subject,
    ngx_str_t *body, const char *key, size_t *len)
{
    u_char    *msg, *p, *crlf, *b64, *s, *last;
    size_t     n, size;
    ngx_tm_t   tm;
    ngx_str_t  src, dst;
    ngx_uint_t i;

    u_char hash[SHA256_DIGEST_LENGTH];

    /* the text with CRLF line ends, then in base64 lines */

    crlf = ngx_pnalloc(pool, 2 * body->len + 1);
    if (crlf == NULL) {
        return NULL;
    }

    p = crlf;

    for (i = 0; i < body->len; i++) {
        if (body->data[i] == LF && (i == 0 || body->data[i - 1] != CR)) {
            *p++ = CR;
        }

        *p++ = body->data[i];
    }

    src.data = crlf;
    src.len = p - crlf;

    b64 = ngx_pnalloc(pool, ngx_base64_encoded_length(src.len));
    if (b64 == NULL) {
        return NULL;
    }

    dst.data = b64;
    ngx_encode_base64(&dst, &src);

    size = sizeof("Date: Sun, 01 Jan 2000 00:00:00 +0000" CRLF) - 1
           + sizeof("From: \"\" <>" CRLF) - 1 + 4 * ec->from_name.len + 32
           + ec->from.len + sizeof("To: <>" CRLF) - 1 + ngx_strlen(to)
           + sizeof("Subject: " CRLF) - 1 + 4 * subject->len + 32
           + sizeof("Message-ID: <.notify@>" CRLF) - 1
           + 2 * SHA256_DIGEST_LENGTH + ec->domain.len
           + sizeof("MIME-Version: 1.0" CRLF
                    "Content-Type: text/plain; charset=UTF-8" CRLF
                    "Content-Transfer-Encoding: base64" CRLF
                    "Auto-Submitted: auto-generated" CRLF CRLF)
           - 1 + dst.len + (dst.len / NGX_HTTP_TELEHEALTH_MAIL_LINE + 1) * 2;

    msg = ngx_pnalloc(pool, size);
    if (msg == NULL) {
        return NULL;
    }

    ngx_gmtime(ngx_time(), &tm);

    p = ngx_sprintf(msg, "Date: %s, %02d %s %4d %02d:%02d:%02d +0000" CRLF,
        ngx_http_telehealth_mail_week[tm.ngx_tm_wday], tm.ngx_tm_mday,
        ngx_http_telehealth_mail_months[tm.ngx_tm_mon - 1], tm.ngx_tm_year,
        tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);

    p = ngx_cpymem(p, "From: ", sizeof("From: ") - 1);

    if (ec->from_name.len) {
        if (ngx_http_telehealth_mail_plain(&ec->from_name)) {
            *p++ = '"';

            for (i = 0; i < ec->from_name.len; i++) {
                if (ec->from_name.data[i] == '"'
                    || ec->from_name.data[i] == '\\')
                {
                    *p++ = '\\';
                }

                *p++ = ec->from_name.data[i];
            }

            *p++ = '"';

        } else {
            p = ngx_http_telehealth_mail_words(p, &ec->from_name);
        }

        *p++ = ' ';
    }

    p = ngx_sprintf(p, "<%V>" CRLF "To: <%s>" CRLF "Subject: ", &ec->from, to);

    if (ngx_http_telehealth_mail_plain(subject)) {
        p = ngx_cpymem(p, subject->data, subject->len);

    } else {
        p = ngx_http_telehealth_mail_words(p, subject);
    }

    SHA256((u_char *) key, ngx_strlen(key), hash);

    p = ngx_cpymem(p, CRLF "Message-ID: <", sizeof(CRLF "Message-ID: <") - 1);
    p = ngx_hex_dump(p, hash, SHA256_DIGEST_LENGTH);
    p = ngx_sprintf(p, ".notify@%V>" CRLF, &ec->domain);

    p = ngx_cpymem(p,
        "MIME-Version: 1.0" CRLF "Content-Type: text/plain; charset=UTF-8" CRLF
        "Content-Transfer-Encoding: base64" CRLF
        "Auto-Submitted: auto-generated" CRLF CRLF,
        sizeof("MIME-Version: 1.0" CRLF
               "Content-Type: text/plain; charset=UTF-8" CRLF
               "Content-Transfer-Encoding: base64" CRLF
               "Auto-Submitted: auto-generated" CRLF CRLF)
            - 1);

    for (s = dst.data, last = dst.data + dst.len; s < last; s += n) {
        n = ngx_min((size_t) (last - s), NGX_HTTP_TELEHEALTH_MAIL_LINE);
        p = ngx_cpymem(p, s, n);
        *p++ = CR;
        *p++ = LF;
    }

    *len = p - msg;

    return msg;
}


/* printable ASCII that fits on a header line as it is */

static ngx_uint_t
ngx_http_telehealth_mail_plain(ngx_str_t *text)
{
    ngx_uint_t i;

    if (text->len > 70) {
        return 0;
    }

    for (i = 0; i < text->len; i++) {
        if (text->data[i] < ' ' || text->data[i] >= 0x7f) {
            return 0;
        }
    }

    /* "=?" would read as the start of an encoded-word */
    return ngx_strlcasestrn(text->data, text->data + text->len, (u_char *) "=?",
               2 - 1)
           == NULL;
}


/* folded encoded-words, none splitting a UTF-8 character */

static u_char *
ngx_http_telehealth_mail_words(u_char *p, ngx_str_t *text)
{
    u_char   *s, *end, *next, *last;
    ngx_str_t src, dst;

    s = text->data;
    last = text->data + text->len;

    while (s < last) {
        end = s;

        while (end < last) {
            next = end + 1;

            while (next < last && (*next & 0xc0) == 0x80) {
                next++;
            }

            if (next - s > NGX_HTTP_TELEHEALTH_MAIL_WORD && end > s) {
                break;
            }

            end = next;
        }

        if (s != text->data) {
            *p++ = CR;
            *p++ = LF;
            *p++ = ' ';
        }

        p = ngx_cpymem(p, "=?UTF-8?B?", sizeof("=?UTF-8?B?") - 1);

        src.data = s;
        src.len = end - s;
        dst.data = p;

        ngx_encode_base64(&dst, &src);

        p += dst.len;
        *p++ = '?';
        *p++ = '=';

        s = end;
    }

    return p;
}


/* telehealth_email_from address [display name] */

char *
ngx_http_telehealth_email_from(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    u_char    *at;
    ngx_str_t *value;
    ngx_uint_t i;

    if (mcf->email.from.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_telehealth_mail_address((char *) value[1].data) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_email_from\" must be an address "
            "such as noreply@example.org, not \"%V\"",
            &value[1]);
        return NGX_CONF_ERROR;
    }

    at = (u_char *) ngx_strchr(value[1].data, '@');

    mcf->email.from = value[1];
    mcf->email.domain.data = at + 1;
    mcf->email.domain.len = value[1].data + value[1].len - at - 1;

    if (cf->args->nelts == 3) {
        for (i = 0; i < value[2].len; i++) {
            if (value[2].data[i] < ' ' || value[2].data[i] == 0x7f) {
                return "has a control character in the display name";
            }
        }

        mcf->email.from_name = value[2];
    }

    return NGX_CONF_OK;
}


/*
 * Reads a whole file of at most max bytes into the configuration pool,
 * NUL-ended; run by the master at start and reload, so the file may be
 * readable by root only.
 */

static ngx_int_t
ngx_http_telehealth_conf_read(ngx_conf_t *cf, ngx_str_t *name, size_t max,
    ngx_str_t *out)
{
    ssize_t         n;
    ngx_file_t      file;
    ngx_file_info_t fi;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
            ngx_open_file_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    n = NGX_ERROR;

    if (ngx_fd_info(file.fd, &fi) != NGX_FILE_ERROR
        && ngx_file_size(&fi) <= (off_t) max)
    {
        out->len = (size_t) ngx_file_size(&fi);
        out->data = ngx_pnalloc(cf->pool, out->len + 1);

        if (out->data != NULL) {
            n = ngx_read_file(&file, out->data, out->len, 0);
        }
    }

    ngx_close_file(file.fd);

    if (n != (ssize_t) out->len || out->data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"%V\" cannot be read or is larger than %uz "
            "bytes",
            name, max);
        return NGX_ERROR;
    }

    out->data[out->len] = '\0';

    return NGX_OK;
}


/* telehealth_email_credentials file: "user:password" on the first line */

char *
ngx_http_telehealth_email_credentials(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    u_char    *p, *last, *colon;
    ngx_str_t *value, text;

    if (mcf->email.user.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_telehealth_conf_read(cf, &value[1], 1024, &text) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    last = text.data + text.len;

    for (p = text.data; p < last && *p != CR && *p != LF; p++) {
        /* void */
    }

    *p = '\0';
    colon = ngx_strlchr(text.data, p, ':');

    if (colon == NULL || colon == text.data || colon + 1 == p) {
        ngx_explicit_memzero(text.data, text.len);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"%V\" must hold \"user:password\" on its "
            "first line",
            &value[1]);
        return NGX_CONF_ERROR;
    }

    /* both stay NUL-ended in the file's buffer; the rest is wiped */
    *colon = '\0';
    ngx_explicit_memzero(p, last - p);

    mcf->email.user.data = text.data;
    mcf->email.user.len = colon - text.data;
    mcf->email.password.data = colon + 1;
    mcf->email.password.len = p - colon - 1;

    return NGX_CONF_OK;
}


/* telehealth_email_trusted_certificate file: PEM, kept in memory */

char *
ngx_http_telehealth_email_trusted(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    ngx_str_t *value;

    if (mcf->email.trusted.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_telehealth_conf_read(cf, &value[1], 1024 * 1024,
            &mcf->email.trusted)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_strstrn(mcf->email.trusted.data, "-----BEGIN CERTIFICATE-----",
            sizeof("-----BEGIN CERTIFICATE-----") - 2)
        == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"%V\" holds no PEM certificate", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
