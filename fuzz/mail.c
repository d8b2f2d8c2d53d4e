/*
 * The e-mail encoder (nginx-module/ngx_http_telehealth_mail.c): a
 * recipient address, a subject, a body and a sender's display name (NUL
 * separated in the input).  An address the check accepts, with texts of
 * valid UTF-8 (as templates give), must make a message whose header lines
 * end in CRLF only, none longer than RFC 5322's 998 characters and none
 * injected (every line a "Name:" or a folded continuation).
 */

#include "fuzz_ngx.h"

#include "../nginx-module/ngx_http_telehealth_mail.c"


static ngx_uint_t
fuzz_utf8(u_char *p, size_t len)
{
    u_char *last;

    for (last = p + len; p < last;) {
        if (*p < 0x80) {
            p++;
            continue;
        }

        if (ngx_utf8_decode(&p, last - p) > 0x10ffff) {
            return 0;
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                          *msg, *p, *end, *line, *f[4];
    size_t                           len, n[4];
    ngx_uint_t                       i;
    ngx_str_t                        subject, body;
    ngx_pool_t                      *pool;
    ngx_http_telehealth_email_conf_t ec;

    pool = ngx_create_pool(4096, fuzz_ngx_log());
    p = fuzz_ngx_copy(pool, data, size);
    end = p + size;

    for (i = 0; i < 4; i++) {
        f[i] = p;
        while (p < end && *p != '\0') {
            p++;
        }

        n[i] = p - f[i];
        if (p < end) {
            p++;
        }
    }

    if (ngx_http_telehealth_mail_address((char *) f[0]) != NGX_OK
        || !fuzz_utf8(f[1], n[1]) || !fuzz_utf8(f[3], n[3]))
    {
        ngx_destroy_pool(pool);
        return 0;
    }

    ngx_memzero(&ec, sizeof(ec));
    ngx_str_set(&ec.from, "noreply@clinic.example");
    ngx_str_set(&ec.domain, "clinic.example");
    ec.from_name.data = f[3];
    ec.from_name.len = n[3];

    subject.data = f[1];
    subject.len = n[1];
    body.data = f[2];
    body.len = n[2];

    msg = ngx_http_telehealth_mail_message(pool, &ec, (char *) f[0], &subject,
        &body, "key-1", &len);
    if (msg == NULL) {
        abort();
    }

    /* the header lines, up to the blank line */
    for (p = msg, end = msg + len; p < end; p += 2) {
        line = p;

        while (p < end && *p != '\r' && *p != '\n') {
            p++;
        }

        if (p + 1 >= end || p[0] != '\r' || p[1] != '\n' || p - line > 998) {
            abort();
        }

        if (p == line) {
            break;
        }

        if (*line != ' ' && ngx_strlchr(line, p, ':') == NULL) {
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
