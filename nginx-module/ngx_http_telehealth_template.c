/*
 * Notification templates.
 *
 * A template is one UTF-8 file, <dir>/<language>/<template>.<channel>,
 * channel one of sms, email, whatsapp.  An e-mail file starts with a
 * "Subject: ..." line and a blank line; the rest is the body.  "{{name}}"
 * is replaced by the message's value of name; every other character is
 * sent as written (a final line break is dropped).  All files are read at
 * configuration (re)load, so a broken file stops the reload, not a
 * delivery; a placeholder without a value fails only that message.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_telehealth_template.h"


#define NGX_HTTP_TELEHEALTH_TEMPLATE_MAX 65536


typedef struct {
    ngx_str_t language;
    ngx_str_t name;
    ngx_str_t channel;
    ngx_str_t subject; /* e-mail only */
    ngx_str_t body;
} ngx_http_telehealth_template_t;


static ngx_int_t ngx_http_telehealth_template_read(ngx_conf_t *cf,
    ngx_http_telehealth_templates_conf_t *tc, ngx_str_t *language,
    ngx_str_t *path, u_char *file, size_t len);
static ngx_int_t ngx_http_telehealth_template_check(ngx_conf_t *cf,
    ngx_str_t *path, ngx_str_t *text);
static ngx_int_t ngx_http_telehealth_template_language(u_char *p, size_t len);
static ngx_int_t ngx_http_telehealth_template_word(u_char *p, size_t len);
static ngx_http_telehealth_template_t *
ngx_http_telehealth_template_find(ngx_http_telehealth_templates_conf_t *tc,
    u_char *name, size_t nlen, u_char *channel, size_t clen, u_char *language,
    size_t llen);
static ngx_int_t ngx_http_telehealth_template_fill(ngx_pool_t *pool,
    ngx_str_t *text, json_t *params, ngx_uint_t oneline, ngx_str_t *out,
    char *reason, ngx_http_telehealth_template_t *t);


static ngx_str_t ngx_http_telehealth_template_channels[] = { ngx_string("sms"),
    ngx_string("email"), ngx_string("whatsapp"), ngx_null_string };


char *
ngx_http_telehealth_templates_load(ngx_conf_t *cf,
    ngx_http_telehealth_templates_conf_t      *tc)
{
    u_char                         *p;
    size_t                          len;
    ngx_dir_t                       dir, sub;
    ngx_str_t                       path, lang;
    ngx_uint_t                      i, j, ok;
    ngx_file_info_t                 fi;
    ngx_http_telehealth_template_t *t;

    if (ngx_conf_full_name(cf->cycle, &tc->dir, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    tc->list =
        ngx_array_create(cf->pool, 16, sizeof(ngx_http_telehealth_template_t));
    if (tc->list == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_open_dir(&tc->dir, &dir) == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
            "telehealth_templates: " ngx_open_dir_n " \"%V\" failed", &tc->dir);
        return NGX_CONF_ERROR;
    }

    ok = 1;

    for (;;) {
        ngx_set_errno(0);

        if (ngx_read_dir(&dir) == NGX_ERROR) {
            if (ngx_errno != NGX_ENOMOREFILES) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                    "telehealth_templates: " ngx_read_dir_n " \"%V\" failed",
                    &tc->dir);
                ok = 0;
            }

            break;
        }

        lang.data = ngx_de_name(&dir);
        lang.len = ngx_de_namelen(&dir);

        if (lang.data[0] == '.') {
            continue;
        }

        path.len = tc->dir.len + 1 + lang.len;
        path.data = ngx_pnalloc(cf->pool, path.len + 1);
        if (path.data == NULL) {
            ok = 0;
            break;
        }

        ngx_sprintf(path.data, "%V/%V%Z", &tc->dir, &lang);

        if (ngx_file_info(path.data, &fi) == NGX_FILE_ERROR || !ngx_is_dir(&fi))
        {
            continue;
        }

        if (ngx_http_telehealth_template_language(lang.data, lang.len)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                "telehealth_templates: \"%V\" is not a "
                "language tag such as en or pt-BR",
                &path);
            ok = 0;
            continue;
        }

        lang.data = ngx_pstrdup(cf->pool, &lang);
        if (lang.data == NULL) {
            ok = 0;
            break;
        }

        if (ngx_open_dir(&path, &sub) == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                "telehealth_templates: " ngx_open_dir_n " \"%V\" failed",
                &path);
            ok = 0;
            continue;
        }

        for (;;) {
            ngx_set_errno(0);

            if (ngx_read_dir(&sub) == NGX_ERROR) {
                if (ngx_errno != NGX_ENOMOREFILES) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                        "telehealth_templates: " ngx_read_dir_n
                        " \"%V\" failed",
                        &path);
                    ok = 0;
                }

                break;
            }

            p = ngx_de_name(&sub);
            len = ngx_de_namelen(&sub);

            if (p[0] == '.') {
                continue;
            }

            if (ngx_http_telehealth_template_read(cf, tc, &lang, &path, p, len)
                != NGX_OK)
            {
                ok = 0;
            }
        }

        ngx_close_dir(&sub);
    }

    ngx_close_dir(&dir);

    if (!ok) {
        return NGX_CONF_ERROR;
    }

    /* every template has a text in the default language */

    t = tc->list->elts;

    for (i = 0; i < tc->list->nelts; i++) {
        if (ngx_http_telehealth_template_find(tc, t[i].name.data, t[i].name.len,
                t[i].channel.data, t[i].channel.len, tc->default_language.data,
                tc->default_language.len)
            != NULL)
        {
            continue;
        }

        /* report each missing one once */
        for (j = 0; j < i; j++) {
            if (t[j].name.len == t[i].name.len
                && t[j].channel.len == t[i].channel.len
                && ngx_strncmp(t[j].name.data, t[i].name.data, t[i].name.len)
                       == 0
                && ngx_strncmp(t[j].channel.data, t[i].channel.data,
                       t[i].channel.len)
                       == 0)
            {
                break;
            }
        }

        if (j == i) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                "telehealth_templates: \"%V/%V/%V.%V\" is "
                "missing: the template \"%V\" has no text in "
                "the default language \"%V\"",
                &tc->dir, &tc->default_language, &t[i].name, &t[i].channel,
                &t[i].name, &tc->default_language);
            ok = 0;
        }
    }

    if (!ok) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_telehealth_template_read(ngx_conf_t *cf,
    ngx_http_telehealth_templates_conf_t *tc, ngx_str_t *language,
    ngx_str_t *path, u_char *file, size_t len)
{
    u_char                         *dot, *p, *last;
    ssize_t                         n;
    ngx_str_t                       name, full, text, *ch;
    ngx_file_t                      f;
    ngx_file_info_t                 fi;
    ngx_http_telehealth_template_t *t;

    dot = ngx_strlchr(file, file + len, '.');

    name.data = file;
    name.len = dot ? (size_t) (dot - file) : len;

    full.len = path->len + 1 + len;
    full.data = ngx_pnalloc(cf->pool, full.len + 1);
    if (full.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(full.data, "%V/%*s%Z", path, len, file);

    ch = NULL;

    if (dot != NULL) {
        for (ch = ngx_http_telehealth_template_channels; ch->len; ch++) {
            if ((size_t) (file + len - dot - 1) == ch->len
                && ngx_strncmp(dot + 1, ch->data, ch->len) == 0)
            {
                break;
            }
        }
    }

    if (ch == NULL || ch->len == 0
        || ngx_http_telehealth_template_word(name.data, name.len) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_templates: \"%V\" is not named "
            "<template>.sms, .email or .whatsapp (lower-case "
            "letters, digits and \"_\")",
            &full);
        return NGX_ERROR;
    }

    ngx_memzero(&f, sizeof(ngx_file_t));

    f.name = full;
    f.log = cf->log;

    f.fd = ngx_open_file(full.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (f.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
            "telehealth_templates: " ngx_open_file_n " \"%V\" failed", &full);
        return NGX_ERROR;
    }

    if (ngx_fd_info(f.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > NGX_HTTP_TELEHEALTH_TEMPLATE_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_templates: \"%V\" cannot be read or "
            "is larger than 64k",
            &full);
        ngx_close_file(f.fd);
        return NGX_ERROR;
    }

    text.len = (size_t) ngx_file_size(&fi);
    text.data = ngx_pnalloc(cf->pool, text.len + 1);
    if (text.data == NULL) {
        ngx_close_file(f.fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&f, text.data, text.len, 0);

    ngx_close_file(f.fd);

    if (n != (ssize_t) text.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_templates: \"%V\" could not be read", &full);
        return NGX_ERROR;
    }

    /* a final line break is the editor's, not the text's */
    while (text.len
           && (text.data[text.len - 1] == LF || text.data[text.len - 1] == CR))
    {
        text.len--;
    }

    text.data[text.len] = '\0';

    if (ngx_http_telehealth_template_check(cf, &full, &text) != NGX_OK) {
        return NGX_ERROR;
    }

    t = ngx_array_push(tc->list);
    if (t == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(t, sizeof(ngx_http_telehealth_template_t));

    t->language = *language;
    t->channel = *ch;
    t->body = text;

    t->name.len = name.len;
    t->name.data = ngx_pstrdup(cf->pool, &name);
    if (t->name.data == NULL) {
        return NGX_ERROR;
    }

    if (ch->len != sizeof("email") - 1
        || ngx_strncmp(ch->data, "email", ch->len) != 0)
    {
        return NGX_OK;
    }

    /* "Subject: ...", a blank line, the body */

    p = text.data;
    last = text.data + text.len;

    if (text.len < sizeof("Subject:") - 1
        || ngx_strncasecmp(p, (u_char *) "Subject:", sizeof("Subject:") - 1)
               != 0)
    {
        goto bad_email;
    }

    p += sizeof("Subject:") - 1;

    while (p < last && *p == ' ') {
        p++;
    }

    t->subject.data = p;

    while (p < last && *p != LF) {
        p++;
    }

    t->subject.len = p - t->subject.data;

    while (t->subject.len
           && (t->subject.data[t->subject.len - 1] == CR
               || t->subject.data[t->subject.len - 1] == ' '))
    {
        t->subject.len--;
    }

    if (t->subject.len == 0 || p == last) {
        goto bad_email;
    }

    p++;

    if (p < last && *p == CR) {
        p++;
    }

    if (p == last || *p != LF) {
        goto bad_email;
    }

    t->body.data = p + 1;
    t->body.len = last - t->body.data;

    return NGX_OK;

bad_email:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
        "telehealth_templates: \"%V\" must start with a "
        "\"Subject: ...\" line, then a blank line, then the "
        "body",
        &full);
    return NGX_ERROR;
}


/* UTF-8 throughout, and every "{{" opens a "{{name}}" */

static ngx_int_t
ngx_http_telehealth_template_check(ngx_conf_t *cf, ngx_str_t *path,
    ngx_str_t *text)
{
    u_char    *p, *last, *end;
    ngx_uint_t line;

    p = text->data;
    last = text->data + text->len;

    while (p < last) {
        if (*p < 0x80) {
            p++;
            continue;
        }

        end = p;

        if (ngx_utf8_decode(&end, last - p) > 0x10ffff) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                "telehealth_templates: \"%V\" is not UTF-8", path);
            return NGX_ERROR;
        }

        p = end;
    }

    line = 1;

    for (p = text->data; p < last; p++) {
        if (*p == LF) {
            line++;
            continue;
        }

        if (*p != '{' || p + 1 == last || p[1] != '{') {
            continue;
        }

        end = ngx_strlcasestrn(p + 2, last, (u_char *) "}}", 2 - 1);

        if (end == NULL
            || ngx_http_telehealth_template_word(p + 2, end - p - 2) != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                "telehealth_templates: \"%V\" line %ui: "
                "\"{{\" must open a placeholder such as "
                "{{link}} (lower-case letters, digits, \"_\")",
                path, line);
            return NGX_ERROR;
        }

        p = end + 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_telehealth_template_language(u_char *p, size_t len)
{
    size_t i, n;

    /* [a-z]{2,3}(-[A-Za-z0-9]{2,8})*, as patients.language */

    for (n = 0; n < len && p[n] >= 'a' && p[n] <= 'z'; n++) {
        /* void */
    }

    if (n < 2 || n > 3) {
        return NGX_ERROR;
    }

    while (n < len) {
        if (p[n++] != '-') {
            return NGX_ERROR;
        }

        for (i = 0; n < len && p[n] != '-'; i++, n++) {
            if (!((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z')
                    || (p[n] >= '0' && p[n] <= '9')))
            {
                return NGX_ERROR;
            }
        }

        if (i < 2 || i > 8) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_telehealth_template_word(u_char *p, size_t len)
{
    size_t i;

    if (len == 0 || len > 63) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')
                || p[i] == '_'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_http_telehealth_template_t *
ngx_http_telehealth_template_find(ngx_http_telehealth_templates_conf_t *tc,
    u_char *name, size_t nlen, u_char *channel, size_t clen, u_char *language,
    size_t llen)
{
    ngx_uint_t                      i;
    ngx_http_telehealth_template_t *t;

    t = tc->list->elts;

    for (i = 0; i < tc->list->nelts; i++) {
        if (t[i].name.len == nlen && t[i].channel.len == clen
            && t[i].language.len == llen
            && ngx_strncmp(t[i].name.data, name, nlen) == 0
            && ngx_strncmp(t[i].channel.data, channel, clen) == 0
            && ngx_strncasecmp(t[i].language.data, language, llen) == 0)
        {
            return &t[i];
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_telehealth_template_render(ngx_pool_t *pool,
    ngx_http_telehealth_templates_conf_t *tc, const char *name,
    const char *channel, const char *language, const char *params,
    ngx_str_t *subject, ngx_str_t *body, char *reason)
{
    u_char                         *dash;
    size_t                          nlen, clen, llen;
    json_t                         *o;
    ngx_int_t                       rc;
    json_error_t                    err;
    ngx_http_telehealth_template_t *t;

    if (tc->list == NULL) {
        ngx_cpystrn((u_char *) reason,
            (u_char *) "no telehealth_templates "
                       "configured",
            NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN);
        return NGX_AGAIN;
    }

    nlen = ngx_strlen(name);
    clen = ngx_strlen(channel);
    llen = ngx_strlen(language);

    /* pt-BR, else pt, else the default language */

    t = ngx_http_telehealth_template_find(tc, (u_char *) name, nlen,
        (u_char *) channel, clen, (u_char *) language, llen);

    dash = (u_char *) ngx_strchr(language, '-');

    if (t == NULL && dash != NULL) {
        t = ngx_http_telehealth_template_find(tc, (u_char *) name, nlen,
            (u_char *) channel, clen, (u_char *) language,
            dash - (u_char *) language);
    }

    if (t == NULL) {
        t = ngx_http_telehealth_template_find(tc, (u_char *) name, nlen,
            (u_char *) channel, clen, tc->default_language.data,
            tc->default_language.len);
    }

    if (t == NULL) {
        ngx_snprintf((u_char *) reason,
            NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN - 1,
            "no template \"%*s.%*s\"%Z", nlen > 63 ? 63 : nlen, name,
            clen > 10 ? 10 : clen, channel);
        reason[NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN - 1] = '\0';
        return NGX_DECLINED;
    }

    o = json_loads(params ? params : "{}", 0, &err);

    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        ngx_cpystrn((u_char *) reason,
            (u_char *) "params is not a JSON "
                       "object",
            NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN);
        return NGX_DECLINED;
    }

    subject->len = 0;
    subject->data = NULL;

    rc = ngx_http_telehealth_template_fill(pool, &t->body, o, 0, body, reason,
        t);

    if (rc == NGX_OK && t->subject.len) {
        rc = ngx_http_telehealth_template_fill(pool, &t->subject, o, 1, subject,
            reason, t);
    }

    json_decref(o);

    return rc;
}


/* out is NUL-ended; oneline: no value may break the line (a header) */

static ngx_int_t
ngx_http_telehealth_template_fill(ngx_pool_t *pool, ngx_str_t *text,
    json_t *params, ngx_uint_t oneline, ngx_str_t *out, char *reason,
    ngx_http_telehealth_template_t *t)
{
    char       *key, *dumped;
    u_char     *p, *last, *end, *dst;
    size_t      len, n;
    json_t     *v;
    ngx_uint_t  pass;
    const char *value;

    out->len = 0;
    out->data = NULL;
    dst = NULL;

    /* the first pass measures, the second copies */

    for (pass = 0; pass < 2; pass++) {
        len = 0;

        for (p = text->data, last = text->data + text->len; p < last; p++) {

            if (!(*p == '{' && p + 1 < last && p[1] == '{')) {
                if (dst) {
                    *dst++ = *p;
                }

                len++;
                continue;
            }

            end = ngx_strlcasestrn(p + 2, last, (u_char *) "}}", 2 - 1);
            n = end - p - 2;

            key = ngx_pnalloc(pool, n + 1);
            if (key == NULL) {
                ngx_cpystrn((u_char *) reason, (u_char *) "out of memory",
                    NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN);
                return NGX_DECLINED;
            }

            ngx_cpystrn((u_char *) key, p + 2, n + 1);

            v = json_object_get(params, key);
            dumped = NULL;

            if (json_is_string(v)) {
                value = json_string_value(v);

            } else if (json_is_number(v) || json_is_boolean(v)) {
                dumped = json_dumps(v, JSON_ENCODE_ANY);
                value = dumped;

            } else {
                value = NULL;
            }

            if (value == NULL || *value == '\0'
                || (oneline && strpbrk(value, "\r\n") != NULL))
            {
                ngx_snprintf((u_char *) reason,
                    NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN - 1,
                    "template \"%V.%V\" (%V): %s {{%s}}%Z", &t->name,
                    &t->channel, &t->language,
                    value == NULL || *value == '\0' ? "no value for"
                                                    : "a line break in",
                    key);
                reason[NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN - 1] = '\0';
                free(dumped);
                return NGX_DECLINED;
            }

            n = ngx_strlen(value);

            if (dst) {
                dst = ngx_cpymem(dst, value, n);
            }

            len += n;
            free(dumped);

            p = end + 1;
        }

        if (pass == 0) {
            out->data = ngx_pnalloc(pool, len + 1);
            if (out->data == NULL) {
                ngx_cpystrn((u_char *) reason, (u_char *) "out of memory",
                    NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN);
                return NGX_DECLINED;
            }

            dst = out->data;
        }
    }

    *dst = '\0';
    out->len = len;

    return NGX_OK;
}
