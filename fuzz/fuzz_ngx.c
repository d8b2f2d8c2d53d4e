/*
 * The few nginx core functions the nginx-side targets reach, for linking
 * the module's parsers without an nginx binary (nginx-dev ships headers
 * only).  Pools hand out one malloc() per allocation, so AddressSanitizer
 * sees every overrun that a real pool block would hide.  Module code that
 * a target does not reach stays unresolved (the link ignores it).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <stdlib.h>


volatile ngx_cycle_t *ngx_cycle;
volatile ngx_msec_t   ngx_current_msec;
volatile ngx_time_t  *ngx_cached_time;
ngx_uint_t            ngx_pagesize = 4096;

static ngx_time_t fuzz_time = { 1700000000, 0, 0 };
static ngx_log_t  fuzz_log;


ngx_log_t *
fuzz_ngx_log(void)
{
    ngx_cached_time = &fuzz_time;
    fuzz_log.log_level = NGX_LOG_EMERG;
    return &fuzz_log;
}


ngx_pool_t *
ngx_create_pool(size_t size, ngx_log_t *log)
{
    ngx_pool_t *pool;

    pool = calloc(1, sizeof(ngx_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->log = log;

    return pool;
}


void
ngx_destroy_pool(ngx_pool_t *pool)
{
    ngx_pool_large_t   *l, *next;
    ngx_pool_cleanup_t *c;

    for (c = pool->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }

    for (l = pool->large; l; l = next) {
        next = l->next;
        free(l->alloc);
        free(l);
    }

    free(pool);
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    ngx_pool_large_t *l;

    l = malloc(sizeof(ngx_pool_large_t));
    if (l == NULL) {
        return NULL;
    }

    l->alloc = malloc(size ? size : 1);
    if (l->alloc == NULL) {
        free(l);
        return NULL;
    }

    l->next = pool->large;
    pool->large = l;

    return l->alloc;
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void *p;

    p = ngx_palloc(pool, size);
    if (p) {
        ngx_memzero(p, size);
    }

    return p;
}


ngx_int_t
ngx_pfree(ngx_pool_t *pool, void *p)
{
    return NGX_DECLINED;
}


ngx_pool_cleanup_t *
ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    ngx_pool_cleanup_t *c;

    c = ngx_palloc(p, sizeof(ngx_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    c->data = size ? ngx_palloc(p, size) : NULL;
    c->handler = NULL;
    c->next = p->cleanup;
    p->cleanup = c;

    return c;
}


void *
ngx_array_push_n(ngx_array_t *a, ngx_uint_t n)
{
    void      *elt, *new;
    ngx_uint_t nalloc;

    if (a->nelts + n > a->nalloc) {
        nalloc = 2 * ((n >= a->nalloc) ? n : a->nalloc);
        new = ngx_palloc(a->pool, nalloc * a->size);
        if (new == NULL) {
            return NULL;
        }

        ngx_memcpy(new, a->elts, a->nelts * a->size);
        a->elts = new;
        a->nalloc = nalloc;
    }

    elt = (u_char *) a->elts + a->size * a->nelts;
    a->nelts += n;

    return elt;
}


void *
ngx_array_push(ngx_array_t *a)
{
    return ngx_array_push_n(a, 1);
}


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
}


void ngx_cdecl
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
}


u_char *
ngx_cpystrn(u_char *dst, u_char *src, size_t n)
{
    if (n == 0) {
        return dst;
    }

    while (--n) {
        *dst = *src;

        if (*dst == '\0') {
            return dst;
        }

        dst++;
        src++;
    }

    *dst = '\0';

    return dst;
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    return strncasecmp((char *) s1, (char *) s2, n);
}


ngx_int_t
ngx_strcasecmp(u_char *s1, u_char *s2)
{
    return strcasecmp((char *) s1, (char *) s2);
}


/* as nginx's: s2 is n + 1 bytes long */

u_char *
ngx_strlcasestrn(u_char *s1, u_char *last, u_char *s2, size_t n)
{
    ngx_uint_t c1, c2;

    c2 = (ngx_uint_t) *s2++;
    c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;
    last -= n;

    do {
        do {
            if (s1 >= last) {
                return NULL;
            }

            c1 = (ngx_uint_t) *s1++;
            c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;

        } while (c1 != c2);

    } while (ngx_strncasecmp(s1, s2, n) != 0);

    return --s1;
}


u_char *
ngx_hex_dump(u_char *dst, u_char *src, size_t len)
{
    static u_char hex[] = "0123456789abcdef";

    while (len--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0xf];
    }

    return dst;
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    ngx_int_t value;

    if (n == 0) {
        return NGX_ERROR;
    }

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9' || value > NGX_MAX_INT_T_VALUE / 10) {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


/* nginx's: an invalid escape drops the "%" (and a first hex digit) */

void
ngx_unescape_uri(u_char **dst, u_char **src, size_t size, ngx_uint_t type)
{
    u_char *d, *s, ch, c, decoded;
    enum { sw_usual = 0, sw_quoted, sw_quoted_second } state;

    d = *dst;
    s = *src;
    state = sw_usual;
    decoded = 0;

    while (size--) {
        ch = *s++;

        switch (state) {
        case sw_usual:
            if (ch == '%') {
                state = sw_quoted;
                break;
            }

            *d++ = ch;
            break;

        case sw_quoted:
            if (ch >= '0' && ch <= '9') {
                decoded = (u_char) (ch - '0');
                state = sw_quoted_second;
                break;
            }

            c = (u_char) (ch | 0x20);
            if (c >= 'a' && c <= 'f') {
                decoded = (u_char) (c - 'a' + 10);
                state = sw_quoted_second;
                break;
            }

            state = sw_usual;
            *d++ = ch;
            break;

        case sw_quoted_second:
            state = sw_usual;

            if (ch >= '0' && ch <= '9') {
                *d++ = (u_char) ((decoded << 4) + (ch - '0'));
                break;
            }

            c = (u_char) (ch | 0x20);
            if (c >= 'a' && c <= 'f') {
                *d++ = (u_char) ((decoded << 4) + (c - 'a') + 10);
                break;
            }

            break;
        }
    }

    *dst = d;
    *src = s;
}


static void
fuzz_encode_base64(ngx_str_t *dst, ngx_str_t *src, const u_char *basis,
    ngx_uint_t padding)
{
    u_char *d, *s;
    size_t  len;

    len = src->len;
    s = src->data;
    d = dst->data;

    while (len > 2) {
        *d++ = basis[(s[0] >> 2) & 0x3f];
        *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
        *d++ = basis[((s[1] & 0x0f) << 2) | (s[2] >> 6)];
        *d++ = basis[s[2] & 0x3f];
        s += 3;
        len -= 3;
    }

    if (len) {
        *d++ = basis[(s[0] >> 2) & 0x3f];

        if (len == 1) {
            *d++ = basis[(s[0] & 3) << 4];
            if (padding) {
                *d++ = '=';
            }

        } else {
            *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
            *d++ = basis[(s[1] & 0x0f) << 2];
        }

        if (padding) {
            *d++ = '=';
        }
    }

    dst->len = d - dst->data;
}


void
ngx_encode_base64(ngx_str_t *dst, ngx_str_t *src)
{
    fuzz_encode_base64(dst, src,
        (u_char *) "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456"
                   "789+/",
        1);
}


void
ngx_encode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    fuzz_encode_base64(dst, src,
        (u_char *) "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456"
                   "789-_",
        0);
}


static ngx_int_t
fuzz_decode_base64(ngx_str_t *dst, ngx_str_t *src, ngx_uint_t url)
{
    size_t      len;
    u_char     *d, *s, v[256];
    const char *alpha;
    int         i;

    alpha = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789-_"
                : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789+/";
    memset(v, 77, sizeof(v));
    for (i = 0; i < 64; i++) {
        v[(u_char) alpha[i]] = (u_char) i;
    }

    for (len = 0; len < src->len; len++) {
        if (src->data[len] == '=') {
            break;
        }

        if (v[src->data[len]] == 77) {
            return NGX_ERROR;
        }
    }

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    s = src->data;
    d = dst->data;

    while (len > 3) {
        *d++ = (u_char) (v[s[0]] << 2 | v[s[1]] >> 4);
        *d++ = (u_char) (v[s[1]] << 4 | v[s[2]] >> 2);
        *d++ = (u_char) (v[s[2]] << 6 | v[s[3]]);
        s += 4;
        len -= 4;
    }

    if (len > 1) {
        *d++ = (u_char) (v[s[0]] << 2 | v[s[1]] >> 4);
    }

    if (len > 2) {
        *d++ = (u_char) (v[s[1]] << 4 | v[s[2]] >> 2);
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


ngx_int_t
ngx_decode_base64(ngx_str_t *dst, ngx_str_t *src)
{
    return fuzz_decode_base64(dst, src, 0);
}


ngx_int_t
ngx_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    return fuzz_decode_base64(dst, src, 1);
}


/* nginx's: 0xffffffff for an invalid sequence, 0xfffffffe for a short one */

uint32_t
ngx_utf8_decode(u_char **p, size_t n)
{
    size_t   len;
    uint32_t u, i, valid;

    u = **p;

    if (u >= 0xf0) {
        u &= 0x07;
        valid = 0xffff;
        len = 3;

    } else if (u >= 0xe0) {
        u &= 0x0f;
        valid = 0x7ff;
        len = 2;

    } else if (u >= 0xc2) {
        u &= 0x1f;
        valid = 0x7f;
        len = 1;

    } else {
        (*p)++;
        return 0xffffffff;
    }

    if (n - 1 < len) {
        return 0xfffffffe;
    }

    (*p)++;

    while (len) {
        i = *(*p)++;

        if (i < 0x80) {
            return 0xffffffff;
        }

        u = (u << 6) | (i & 0x3f);
        len--;
    }

    if (u > valid) {
        return u;
    }

    return 0xffffffff;
}


void
ngx_gmtime(time_t t, ngx_tm_t *tp)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    tm.tm_mon++;
    tm.tm_year += 1900;
    *tp = tm;
}


/*
 * The conversions of nginx's ngx_vslprintf() the module uses: %[0][width]
 * [u|m|X|x|z] V v s *s d i l D O T p c Z N %.
 */

u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    u_char    *p, zero, tmp[NGX_INT64_LEN + 1];
    size_t     len, slen, width;
    int64_t    i64;
    uint64_t   ui64;
    ngx_str_t *v;
    ngx_uint_t sign, hex, n;

    while (*fmt && buf < last) {
        if (*fmt != '%') {
            *buf++ = *fmt++;
            continue;
        }

        fmt++;
        zero = (u_char) ((*fmt == '0') ? '0' : ' ');
        width = 0;
        sign = 1;
        hex = 0;
        slen = (size_t) -1;

        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }

        for (;;) {
            if (*fmt == 'u') {
                sign = 0;
            } else if (*fmt == 'm') {
                /* void */
            } else if (*fmt == 'X' || *fmt == 'x') {
                hex = 1;
                sign = 0;
            } else if (*fmt == '*') {
                slen = va_arg(args, size_t);
            } else {
                break;
            }
            fmt++;
        }

        switch (*fmt) {
        case 'V':
            v = va_arg(args, ngx_str_t *);
            len = ngx_min((size_t) (last - buf), v->len);
            buf = ngx_cpymem(buf, v->data, len);
            fmt++;
            continue;

        case 's':
            p = va_arg(args, u_char *);
            len = (slen == (size_t) -1) ? ngx_strlen(p) : slen;
            len = ngx_min((size_t) (last - buf), len);
            buf = ngx_cpymem(buf, p, len);
            fmt++;
            continue;

        case 'Z':
            *buf++ = '\0';
            fmt++;
            continue;

        case 'N':
            *buf++ = LF;
            fmt++;
            continue;

        case 'c':
            *buf++ = (u_char) va_arg(args, int);
            fmt++;
            continue;

        case '%':
            *buf++ = '%';
            fmt++;
            continue;

        case 'z':
            i64 = sign ? (int64_t) va_arg(args, ssize_t)
                       : (int64_t) va_arg(args, size_t);
            break;

        case 'i':
            i64 = sign ? (int64_t) va_arg(args, ngx_int_t)
                       : (int64_t) va_arg(args, ngx_uint_t);
            break;

        case 'd':
            i64 = sign ? (int64_t) va_arg(args, int)
                       : (int64_t) va_arg(args, u_int);
            break;

        case 'l':
            i64 = sign ? (int64_t) va_arg(args, long)
                       : (int64_t) va_arg(args, u_long);
            break;

        case 'D':
            i64 = sign ? (int64_t) va_arg(args, int32_t)
                       : (int64_t) va_arg(args, uint32_t);
            break;

        case 'O':
            i64 = (int64_t) va_arg(args, off_t);
            break;

        case 'T':
            i64 = (int64_t) va_arg(args, time_t);
            break;

        case 'M':
            i64 = (int64_t) va_arg(args, ngx_msec_t);
            sign = 0;
            break;

        case 'p':
            i64 = (int64_t) (uintptr_t) va_arg(args, void *);
            sign = 0;
            hex = 1;
            break;

        default:
            abort(); /* a conversion this file lacks */
        }

        fmt++;

        if (sign && i64 < 0) {
            *buf++ = '-';
            ui64 = (uint64_t) -i64;
        } else {
            ui64 = (uint64_t) i64;
        }

        p = tmp + NGX_INT64_LEN;
        n = 0;

        do {
            *--p = (u_char) (hex ? "0123456789abcdef"[ui64 & 0xf]
                                 : '0' + ui64 % 10);
            ui64 = hex ? ui64 >> 4 : ui64 / 10;
            n++;
        } while (ui64);

        while (n < width && buf < last) {
            *buf++ = zero;
            width--;
        }

        len =
            ngx_min((size_t) (last - buf), (size_t) (tmp + NGX_INT64_LEN - p));
        buf = ngx_cpymem(buf, p, len);
    }

    return buf;
}


u_char *ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    u_char *p;
    va_list args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, (void *) -1, fmt, args);
    va_end(args);

    return p;
}


u_char *ngx_cdecl
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    u_char *p;
    va_list args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + max, fmt, args);
    va_end(args);

    return p;
}


u_char *ngx_cdecl
ngx_slprintf(u_char *buf, u_char *last, const char *fmt, ...)
{
    u_char *p;
    va_list args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, last, fmt, args);
    va_end(args);

    return p;
}


/* the HTTP side of an answer: headers and body are built, then dropped */

ngx_uint_t fuzz_ngx_status;


ngx_buf_t *
ngx_create_temp_buf(ngx_pool_t *pool, size_t size)
{
    ngx_buf_t *b;

    b = ngx_pcalloc(pool, sizeof(ngx_buf_t));
    if (b == NULL) {
        return NULL;
    }

    b->start = ngx_palloc(pool, size);
    if (b->start == NULL) {
        return NULL;
    }

    b->pos = b->start;
    b->last = b->start;
    b->end = b->last + size;
    b->temporary = 1;

    return b;
}


void *
ngx_list_push(ngx_list_t *l)
{
    void            *elt;
    ngx_list_part_t *last;

    last = l->last;

    if (last->nelts == l->nalloc) {
        last = ngx_palloc(l->pool, sizeof(ngx_list_part_t));
        if (last == NULL) {
            return NULL;
        }

        last->elts = ngx_palloc(l->pool, l->nalloc * l->size);
        if (last->elts == NULL) {
            return NULL;
        }

        last->nelts = 0;
        last->next = NULL;
        l->last->next = last;
        l->last = last;
    }

    elt = (char *) last->elts + l->size * last->nelts;
    last->nelts++;

    return elt;
}


ngx_int_t
ngx_http_send_header(ngx_http_request_t *r)
{
    if (r->header_sent) {
        abort(); /* an answer sent twice */
    }

    r->header_sent = 1;
    fuzz_ngx_status = r->headers_out.status;

    return NGX_OK;
}


ngx_int_t
ngx_http_output_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    return NGX_OK;
}


void
ngx_http_finalize_request(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE && !r->header_sent) {
        fuzz_ngx_status = rc;
    }
}


void
ngx_http_run_posted_requests(ngx_connection_t *c)
{
}


ngx_array_t *
ngx_array_create(ngx_pool_t *p, ngx_uint_t n, size_t size)
{
    ngx_array_t *a;

    a = ngx_palloc(p, sizeof(ngx_array_t));
    if (a == NULL || ngx_array_init(a, p, n, size) != NGX_OK) {
        return NULL;
    }

    return a;
}


ssize_t
ngx_read_file(ngx_file_t *file, u_char *buf, size_t size, off_t offset)
{
    ssize_t n;

    n = pread(file->fd, buf, size, offset);
    if (n == -1) {
        return NGX_ERROR;
    }

    file->offset += n;

    return n;
}


u_char *
ngx_pstrdup(ngx_pool_t *pool, ngx_str_t *src)
{
    u_char *dst;

    dst = ngx_pnalloc(pool, src->len);
    if (dst == NULL) {
        return NULL;
    }

    ngx_memcpy(dst, src->data, src->len);

    return dst;
}
