/*
 * An RFC 5322 message for one notification: Date, From, To, Subject
 * (RFC 2047 when not ASCII), a Message-ID derived from the idempotency key,
 * and the text as UTF-8 text/plain in base64.
 */

#ifndef _NGX_HTTP_TELEHEALTH_MAIL_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_MAIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_telehealth_module.h"


/* an address fit for both the envelope and the To header */
ngx_int_t ngx_http_telehealth_mail_address(const char *addr);

/*
 * The message with CRLF line ends, or NULL when out of memory.  Every
 * attempt for the same key has the same Message-ID.
 */
u_char *ngx_http_telehealth_mail_message(ngx_pool_t *pool,
    ngx_http_telehealth_email_conf_t *ec, const char *to, ngx_str_t *subject,
    ngx_str_t *body, const char *key, size_t *len);

/* telehealth_email_from, _credentials, _trusted_certificate */
char *ngx_http_telehealth_email_from(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_telehealth_email_credentials(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_telehealth_email_trusted(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_TELEHEALTH_MAIL_H_INCLUDED_ */
