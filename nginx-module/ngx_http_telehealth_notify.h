/*
 * Delivery of the notification outbox (sql/007_notifications.sql): every
 * worker looks for due messages on a timer, claims a batch with FOR UPDATE
 * SKIP LOCKED and a lease, delivers each through its channel's provider
 * and records sent, skipped, or failed (or pending again, with back-off).
 */

#ifndef _NGX_HTTP_TELEHEALTH_NOTIFY_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_NOTIFY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_telehealth_module.h"


ngx_int_t ngx_http_telehealth_notify_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                           *mcf);
void ngx_http_telehealth_notify_exit_process(void);

/* the configuration of telehealth_sms_* and telehealth_whatsapp_* */
void ngx_http_telehealth_provider_create(
    ngx_http_telehealth_provider_conf_t *pc);
void ngx_http_telehealth_provider_init(ngx_http_telehealth_provider_conf_t *pc);
/* telehealth_sms_url, telehealth_whatsapp_url, telehealth_email_url */
char *ngx_http_telehealth_provider_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* telehealth_notify_retry */
char *ngx_http_telehealth_notify_set_retry(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_TELEHEALTH_NOTIFY_H_INCLUDED_ */
