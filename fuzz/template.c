/*
 * Notification templates (nginx-module/ngx_http_telehealth_template.c): a
 * template file's text, read and checked as telehealth_templates loads it
 * (UTF-8, "{{name}}" placeholders, an e-mail's "Subject:" line), then
 * filled with parameters as the outbox does.  The input is the channel
 * (first byte), the text, a NUL, and the parameters (JSON).  A filled
 * text is NUL-ended, and a subject holds no line feed (a value with a line
 * break is refused; the e-mail encoder encodes any other control).
 */

#include <stdio.h>
#include <unistd.h>

#include "fuzz_ngx.h"

#include "../nginx-module/ngx_http_telehealth_template.c"


static char fuzz_dir[] = "/tmp/th-fuzz-template-XXXXXX";


static void
fuzz_cleanup(void)
{
    char path[sizeof(fuzz_dir) + 32];
    int  i;

    static const char *channels[] = { "sms", "email", "whatsapp" };

    for (i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/invite.%s", fuzz_dir, channels[i]);
        unlink(path);
    }

    rmdir(fuzz_dir);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (mkdtemp(fuzz_dir) == NULL) {
        abort();
    }

    atexit(fuzz_cleanup);

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE                                *f;
    char                                *params, reason[200];
    size_t                               tlen;
    const uint8_t                       *nul;
    ngx_int_t                            rc;
    ngx_str_t                            dir, lang, subject, body, *ch;
    ngx_conf_t                           cf;
    ngx_pool_t                          *pool;
    ngx_http_telehealth_templates_conf_t tc;

    u_char file[32], path[sizeof(fuzz_dir) + 32];

    if (size < 1) {
        return 0;
    }

    ch = &ngx_http_telehealth_template_channels[data[0] % 3];
    data++;
    size--;

    nul = memchr(data, '\0', size);
    tlen = nul ? (size_t) (nul - data) : size;
    params =
        nul ? strndup((const char *) nul + 1, size - tlen - 1) : strdup("{}");

    ngx_snprintf(file, sizeof(file), "invite.%V%Z", ch);
    ngx_snprintf(path, sizeof(path), "%s/%s%Z", fuzz_dir, file);

    f = fopen((char *) path, "w");
    if (f == NULL || params == NULL || (tlen && fwrite(data, tlen, 1, f) != 1))
    {
        abort();
    }

    fclose(f);

    pool = ngx_create_pool(4096, fuzz_ngx_log());

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.pool = pool;
    cf.log = pool->log;

    ngx_memzero(&tc, sizeof(tc));
    ngx_str_set(&tc.default_language, "en");
    ngx_str_set(&lang, "en");
    dir.data = (u_char *) fuzz_dir;
    dir.len = strlen(fuzz_dir);

    tc.list = ngx_array_create(pool, 2, sizeof(ngx_http_telehealth_template_t));
    if (tc.list == NULL) {
        abort();
    }

    rc = ngx_http_telehealth_template_read(&cf, &tc, &lang, &dir, file,
        ngx_strlen(file));

    if (rc == NGX_OK) {
        rc = ngx_http_telehealth_template_render(pool, &tc, "invite",
            (char *) ch->data, "en-GB", params, &subject, &body, reason);
        if (rc == NGX_OK) {
            if (body.data == NULL || body.data[body.len] != '\0'
                || (subject.len
                    && memchr(subject.data, '\n', subject.len) != NULL))
            {
                abort();
            }

        } else if (rc != NGX_DECLINED
                   || strnlen(reason, sizeof(reason)) == sizeof(reason))
        {
            abort();
        }
    }

    free(params);
    ngx_destroy_pool(pool);

    return 0;
}
