/*
 * Notification texts in files an ops team edits (telehealth_templates):
 * <dir>/<language>/<template>.<channel>, read at every configuration
 * (re)load, rendered at delivery with the {{name}} values of the message.
 */

#ifndef _NGX_HTTP_TELEHEALTH_TEMPLATE_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_TEMPLATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_telehealth_module.h"


#define NGX_HTTP_TELEHEALTH_TEMPLATE_REASON_LEN 200


/*
 * Reads every template under mcf->templates.dir; a malformed file, or a
 * template without a version in the default language, is an error.
 */
char *ngx_http_telehealth_templates_load(ngx_conf_t *cf,
    ngx_http_telehealth_templates_conf_t            *tc);

/*
 * Renders template name for channel in language (else its base language,
 * else the default one) with the members of the JSON object params.
 * subject is set for e-mail only.  NGX_DECLINED with why in reason (a
 * text without personal data) when it cannot be rendered completely,
 * NGX_AGAIN when no templates are configured (a reload may add them).
 */
ngx_int_t ngx_http_telehealth_template_render(ngx_pool_t *pool,
    ngx_http_telehealth_templates_conf_t *tc, const char *name,
    const char *channel, const char *language, const char *params,
    ngx_str_t *subject, ngx_str_t *body, char *reason);


#endif /* _NGX_HTTP_TELEHEALTH_TEMPLATE_H_INCLUDED_ */
