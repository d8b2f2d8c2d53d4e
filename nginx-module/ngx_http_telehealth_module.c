/*
 * ngx_http_telehealth_module: directives, configuration, and the start and
 * end of each worker's PostgreSQL pool, Redis connection and event
 * consumer.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <arpa/inet.h>

#include "ngx_http_telehealth_module.h"
#include "ngx_http_telehealth_api.h"
#include "ngx_http_telehealth_pg.h"
#include "ngx_http_telehealth_redis.h"
#include "ngx_http_telehealth_revocations.h"
#include "ngx_http_telehealth_password.h"
#include "ngx_http_telehealth_events.h"
#include "ngx_http_telehealth_reconcile.h"
#include "ngx_http_telehealth_purge.h"
#include "ngx_http_telehealth_idp.h"
#include "ngx_http_telehealth_curl.h"
#include "ngx_http_telehealth_notify.h"
#include "ngx_http_telehealth_console.h"
#include "ngx_http_telehealth_template.h"
#include "ngx_http_telehealth_mail.h"
#include "ngx_http_telehealth_chat.h"
#include "ngx_http_telehealth_metrics.h"


#define NGX_HTTP_TELEHEALTH_JOIN_TTL_MAX 60

/* fonts-dejavu-core: Latin, Greek, Cyrillic, Arabic, Hebrew and more */
#define NGX_HTTP_TELEHEALTH_EXPORT_FONT \
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


static void *ngx_http_telehealth_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_telehealth_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_telehealth_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_telehealth_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_telehealth_postgres(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_telehealth_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_uint_t ngx_http_telehealth_ipv6(u_char *p, size_t len);
static ngx_int_t ngx_http_telehealth_redis_addr(ngx_conf_t *cf,
    ngx_str_t *value, ngx_str_t *host, ngx_int_t *port);
static char *ngx_http_telehealth_redis_auth(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_telehealth_redis_sentinel(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_telehealth_signing_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_telehealth_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_telehealth_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_telehealth_keyset_cleanup(void *data);
static ngx_int_t ngx_http_telehealth_keyset_make(ngx_conf_t *cf,
    th_keyset_t                                            **keyset);
static char *ngx_http_telehealth_join_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_telehealth_conf_set_two_uint(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_telehealth_throttle_limits(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_telehealth_throttle_backoff(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_telehealth_init_process(ngx_cycle_t *cycle);
static void ngx_http_telehealth_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t ngx_http_telehealth_pool_size_bounds = {
    ngx_conf_check_num_bounds, 1, 1024
};


static ngx_conf_num_bounds_t ngx_http_telehealth_attempts_bounds = {
    ngx_conf_check_num_bounds, 1, 1000
};


static ngx_conf_enum_t ngx_http_telehealth_provider_formats[] = {
    { ngx_string("form"), NGX_HTTP_TELEHEALTH_PROVIDER_FORM },
    { ngx_string("json"), NGX_HTTP_TELEHEALTH_PROVIDER_JSON },
    { ngx_null_string, 0 }
};


static ngx_str_t ngx_http_telehealth_http_schemes[] = { ngx_string("http://"),
    ngx_string("https://"), ngx_null_string };


static ngx_str_t ngx_http_telehealth_smtp_schemes[] = { ngx_string("smtp://"),
    ngx_string("smtps://"), ngx_null_string };


static ngx_conf_enum_t ngx_http_telehealth_starttls[] = {
    { ngx_string("off"), NGX_HTTP_TELEHEALTH_STARTTLS_OFF },
    { ngx_string("optional"), NGX_HTTP_TELEHEALTH_STARTTLS_OPTIONAL },
    { ngx_string("required"), NGX_HTTP_TELEHEALTH_STARTTLS_REQUIRED },
    { ngx_null_string, 0 }
};


/*
 * The directive table and the module, field by field as nginx writes them
 * (clang-format would pack the fields).
 */
/* clang-format off */
static ngx_command_t  ngx_http_telehealth_commands[] = {

    { ngx_string("telehealth_postgres"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_telehealth_postgres,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, postgres),
      NULL },

    { ngx_string("telehealth_postgres_pool_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, pool_size),
      &ngx_http_telehealth_pool_size_bounds },

    { ngx_string("telehealth_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_telehealth_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_redis_auth"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_telehealth_redis_auth,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_redis_sentinel"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_telehealth_redis_sentinel,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_redis_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, redis_prefix),
      NULL },

    { ngx_string("telehealth_signing_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_telehealth_signing_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_join_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_telehealth_join_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_throttle_account"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_telehealth_throttle_limits,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, throttle.subject_free),
      NULL },

    { ngx_string("telehealth_throttle_address"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_telehealth_throttle_limits,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, throttle.addr_free),
      NULL },

    { ngx_string("telehealth_throttle_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_telehealth_throttle_backoff,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_throttle_lock"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, throttle.lock),
      NULL },

    { ngx_string("telehealth_password_max_pending"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, throttle.password_pending),
      &ngx_http_telehealth_pool_size_bounds },

    { ngx_string("telehealth_access_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, access_token_ttl),
      NULL },

    { ngx_string("telehealth_join_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, join_token_ttl),
      NULL },

    { ngx_string("telehealth_public_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, public_url),
      NULL },

    { ngx_string("telehealth_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("telehealth_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, timeout),
      NULL },

    { ngx_string("telehealth_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, max_body_size),
      NULL },

    { ngx_string("telehealth_events"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, events),
      NULL },

    { ngx_string("telehealth_console_heartbeat"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, console_heartbeat),
      NULL },

    { ngx_string("telehealth_console_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, console_retention),
      NULL },

    { ngx_string("telehealth_console_streams"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_telehealth_conf_set_two_uint,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, console_streams),
      NULL },

    { ngx_string("telehealth_invite_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_telehealth_conf_set_two_uint,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, invite_limit),
      NULL },

    { ngx_string("telehealth_retention_notifications"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, retention_notifications),
      NULL },

    { ngx_string("telehealth_retention_processed_events"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, retention_processed_events),
      NULL },

    { ngx_string("telehealth_retention_invites"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, retention_invites),
      NULL },

    { ngx_string("telehealth_notify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, notify.enable),
      NULL },

    { ngx_string("telehealth_notify_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, notify.interval),
      NULL },

    { ngx_string("telehealth_notify_retry"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_telehealth_notify_set_retry,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_notify_attempts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, notify.attempts),
      &ngx_http_telehealth_attempts_bounds },

    { ngx_string("telehealth_interpreter_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, notify.interpreter_timeout),
      NULL },

    { ngx_string("telehealth_reconcile_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, reconcile_interval),
      NULL },

    { ngx_string("telehealth_export_font"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, export_font),
      NULL },

    { ngx_string("telehealth_purge_after"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, purge.after),
      NULL },

    { ngx_string("telehealth_purge_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, purge.interval),
      NULL },

    { ngx_string("telehealth_video_call_sms_delay"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, video_call_sms_delay),
      NULL },

    { ngx_string("telehealth_templates"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, templates.dir),
      NULL },

    { ngx_string("telehealth_default_language"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, templates.default_language),
      NULL },

    { ngx_string("telehealth_sms_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_telehealth_provider_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, sms.url),
      ngx_http_telehealth_http_schemes },

    { ngx_string("telehealth_sms_auth"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, sms.auth),
      NULL },

    { ngx_string("telehealth_sms_format"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, sms.format),
      &ngx_http_telehealth_provider_formats },

    { ngx_string("telehealth_sms_to_field"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, sms.to_field),
      NULL },

    { ngx_string("telehealth_sms_text_field"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, sms.text_field),
      NULL },

    { ngx_string("telehealth_sms_param"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_conf_set_keyval_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, sms.params),
      NULL },

    { ngx_string("telehealth_sms_sender_field"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, sms.sender_field),
      NULL },

    { ngx_string("telehealth_sms_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, sms.timeout),
      NULL },

    { ngx_string("telehealth_whatsapp_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_telehealth_provider_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, whatsapp.url),
      ngx_http_telehealth_http_schemes },

    { ngx_string("telehealth_whatsapp_auth"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, whatsapp.auth),
      NULL },

    { ngx_string("telehealth_whatsapp_format"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, whatsapp.format),
      &ngx_http_telehealth_provider_formats },

    { ngx_string("telehealth_whatsapp_to_field"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, whatsapp.to_field),
      NULL },

    { ngx_string("telehealth_whatsapp_text_field"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, whatsapp.text_field),
      NULL },

    { ngx_string("telehealth_whatsapp_param"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_conf_set_keyval_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, whatsapp.params),
      NULL },

    { ngx_string("telehealth_whatsapp_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, whatsapp.timeout),
      NULL },

    { ngx_string("telehealth_email_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_telehealth_provider_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, email.url),
      ngx_http_telehealth_smtp_schemes },

    { ngx_string("telehealth_email_starttls"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, email.starttls),
      &ngx_http_telehealth_starttls },

    { ngx_string("telehealth_email_from"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_telehealth_email_from,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_email_credentials"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_telehealth_email_credentials,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_email_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_telehealth_email_trusted,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_email_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, email.timeout),
      NULL },

    { ngx_string("telehealth_idp_jwks"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, idp.jwks),
      NULL },

    { ngx_string("telehealth_idp_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, idp.issuer),
      NULL },

    { ngx_string("telehealth_idp_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, idp.audience),
      NULL },

    { ngx_string("telehealth_idp_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, idp.leeway),
      NULL },

    { ngx_string("telehealth_idp_claim"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, idp.claim),
      NULL },

    { ngx_string("telehealth_chat_files"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, chat.files),
      NULL },

    { ngx_string("telehealth_chat_files_location"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, chat.location),
      NULL },

    { ngx_string("telehealth_chat_max_file_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, chat.max_file_size),
      NULL },

    { ngx_string("telehealth_clamd"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_telehealth_clamd,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_clamd_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_telehealth_main_conf_t, chat.clamd_timeout),
      NULL },

    { ngx_string("telehealth_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_telehealth_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("telehealth_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_telehealth_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_telehealth_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_telehealth_metrics_postconfiguration, /* postconfiguration */

    ngx_http_telehealth_create_main_conf,  /* create main configuration */
    ngx_http_telehealth_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_telehealth_create_loc_conf,   /* create location configuration */
    ngx_http_telehealth_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_telehealth_module = {
    NGX_MODULE_V1,
    &ngx_http_telehealth_module_ctx,       /* module context */
    ngx_http_telehealth_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_telehealth_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_telehealth_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};
/* clang-format on */


static void *
ngx_http_telehealth_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_telehealth_main_conf_t *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_telehealth_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->postgres = { 0, NULL };
     *     mcf->redis = { 0, NULL };
     *     mcf->redis_host = { 0, NULL };
     *     mcf->redis_unix = { 0, NULL };
     *     mcf->redis_prefix = { 0, NULL };
     *     mcf->redis_user = { 0, NULL };
     *     mcf->redis_password = { 0, NULL };
     *     mcf->redis_master = { 0, NULL };
     *     mcf->redis_sentinels = NULL;
     *     mcf->keyset = NULL;
     *     mcf->public_url = { 0, NULL };
     *     mcf->thread_pool_name = { 0, NULL };
     *     mcf->dummy_hash = { 0, NULL };
     *     mcf->idp.jwks = { 0, NULL };
     *     mcf->idp.issuer = { 0, NULL };
     *     mcf->idp.audience = { 0, NULL };
     *     mcf->idp.claim = { 0, NULL };
     *     mcf->idp.keys = NULL;
     *     mcf->api = 0;
     *     mcf->metrics = 0;
     *     mcf->sms.url = { 0, NULL };
     *     mcf->sms.auth = { 0, NULL };
     *     mcf->sms.to_field = { 0, NULL };
     *     mcf->sms.text_field = { 0, NULL };
     *     mcf->sms.sender_field = { 0, NULL };
     *     mcf->whatsapp.* as mcf->sms.*
     *     mcf->email.url = { 0, NULL };
     *     mcf->email.from = { 0, NULL };
     *     mcf->email.from_name = { 0, NULL };
     *     mcf->email.domain = { 0, NULL };
     *     mcf->email.user = { 0, NULL };
     *     mcf->email.password = { 0, NULL };
     *     mcf->email.trusted = { 0, NULL };
     *     mcf->templates.dir = { 0, NULL };
     *     mcf->templates.default_language = { 0, NULL };
     *     mcf->templates.list = NULL;
     */

    mcf->pool_size = NGX_CONF_UNSET_UINT;
    mcf->redis_port = NGX_CONF_UNSET;
    mcf->access_token_ttl = NGX_CONF_UNSET;
    mcf->join_token_ttl = NGX_CONF_UNSET;
    mcf->timeout = NGX_CONF_UNSET_MSEC;
    mcf->max_body_size = NGX_CONF_UNSET_SIZE;
    mcf->events = NGX_CONF_UNSET;
    mcf->reconcile_interval = NGX_CONF_UNSET_MSEC;
    mcf->purge.after = NGX_CONF_UNSET;
    mcf->purge.interval = NGX_CONF_UNSET_MSEC;
    mcf->idp.leeway = NGX_CONF_UNSET;
    mcf->notify.enable = NGX_CONF_UNSET;
    mcf->notify.interval = NGX_CONF_UNSET_MSEC;
    mcf->notify.backoff = NGX_CONF_UNSET_MSEC;
    mcf->notify.backoff_max = NGX_CONF_UNSET_MSEC;
    mcf->notify.attempts = NGX_CONF_UNSET_UINT;
    mcf->notify.batch = NGX_CONF_UNSET_UINT;
    ngx_http_telehealth_provider_create(&mcf->sms);
    ngx_http_telehealth_provider_create(&mcf->whatsapp);
    mcf->email.starttls = NGX_CONF_UNSET_UINT;
    mcf->email.timeout = NGX_CONF_UNSET_MSEC;
    mcf->video_call_sms_delay = NGX_CONF_UNSET_MSEC;
    mcf->notify.interpreter_timeout = NGX_CONF_UNSET;
    mcf->console_heartbeat = NGX_CONF_UNSET_MSEC;
    mcf->console_retention = NGX_CONF_UNSET;
    mcf->console_streams[0] = NGX_CONF_UNSET_UINT;
    mcf->console_streams[1] = NGX_CONF_UNSET_UINT;
    mcf->invite_limit[0] = NGX_CONF_UNSET_UINT;
    mcf->invite_limit[1] = NGX_CONF_UNSET_UINT;
    mcf->retention_notifications = NGX_CONF_UNSET;
    mcf->retention_processed_events = NGX_CONF_UNSET;
    mcf->retention_invites = NGX_CONF_UNSET;
    mcf->throttle.subject_free = NGX_CONF_UNSET_UINT;
    mcf->throttle.subject_lock = NGX_CONF_UNSET_UINT;
    mcf->throttle.addr_free = NGX_CONF_UNSET_UINT;
    mcf->throttle.addr_lock = NGX_CONF_UNSET_UINT;
    mcf->throttle.backoff = NGX_CONF_UNSET_MSEC;
    mcf->throttle.backoff_max = NGX_CONF_UNSET_MSEC;
    mcf->throttle.lock = NGX_CONF_UNSET_MSEC;
    mcf->throttle.password_pending = NGX_CONF_UNSET_UINT;
    mcf->chat.max_file_size = NGX_CONF_UNSET;
    mcf->chat.clamd_timeout = NGX_CONF_UNSET_MSEC;

    return mcf;
}


static char *
ngx_http_telehealth_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    ngx_conf_init_uint_value(mcf->pool_size, 4);
    ngx_conf_init_value(mcf->access_token_ttl, 15 * 60);
    ngx_conf_init_value(mcf->join_token_ttl, 60);
    ngx_conf_init_msec_value(mcf->timeout, 5000);
    ngx_conf_init_size_value(mcf->max_body_size, 64 * 1024);
    ngx_conf_init_value(mcf->events, 1);
    ngx_conf_init_msec_value(mcf->reconcile_interval, 5000);
    ngx_conf_init_value(mcf->purge.after, 24 * 60 * 60);
    ngx_conf_init_msec_value(mcf->purge.interval, 60000);
    ngx_conf_init_value(mcf->notify.enable, 1);
    ngx_conf_init_msec_value(mcf->notify.interval, 1000);
    ngx_conf_init_msec_value(mcf->notify.backoff, 10000);
    ngx_conf_init_msec_value(mcf->notify.backoff_max, 15 * 60 * 1000);
    ngx_conf_init_uint_value(mcf->notify.attempts, 10);
    ngx_conf_init_uint_value(mcf->notify.batch, 20);
    ngx_http_telehealth_provider_init(&mcf->sms);
    ngx_http_telehealth_provider_init(&mcf->whatsapp);

    if (mcf->sms.sender_field.data == NULL) {
        ngx_str_set(&mcf->sms.sender_field, "From");
    }

    ngx_conf_init_uint_value(mcf->email.starttls,
        NGX_HTTP_TELEHEALTH_STARTTLS_REQUIRED);
    ngx_conf_init_msec_value(mcf->email.timeout, 30000);
    ngx_conf_init_msec_value(mcf->video_call_sms_delay, 8000);
    ngx_conf_init_value(mcf->notify.interpreter_timeout, 86400);
    ngx_conf_init_msec_value(mcf->console_heartbeat, 20000);
    ngx_conf_init_value(mcf->console_retention, 24 * 60 * 60);
    ngx_conf_init_uint_value(mcf->console_streams[0], 8);
    ngx_conf_init_uint_value(mcf->console_streams[1], 1024);
    ngx_conf_init_uint_value(mcf->invite_limit[0], 100);
    ngx_conf_init_uint_value(mcf->invite_limit[1], 1000);
    ngx_conf_init_value(mcf->retention_notifications, 90 * 24 * 60 * 60);
    ngx_conf_init_value(mcf->retention_processed_events, 7 * 24 * 60 * 60);
    ngx_conf_init_value(mcf->retention_invites, 30 * 24 * 60 * 60);
    ngx_conf_init_uint_value(mcf->throttle.subject_free, 5);
    ngx_conf_init_uint_value(mcf->throttle.subject_lock, 10);
    ngx_conf_init_uint_value(mcf->throttle.addr_free, 20);
    ngx_conf_init_uint_value(mcf->throttle.addr_lock, 100);
    ngx_conf_init_msec_value(mcf->throttle.backoff, 1000);
    ngx_conf_init_msec_value(mcf->throttle.backoff_max, 5 * 60 * 1000);
    ngx_conf_init_msec_value(mcf->throttle.lock, 15 * 60 * 1000);
    ngx_conf_init_uint_value(mcf->throttle.password_pending, 8);
    ngx_conf_init_value(mcf->chat.max_file_size, 10 * 1024 * 1024);
    ngx_conf_init_msec_value(mcf->chat.clamd_timeout, 30000);

    if (mcf->chat.location.data == NULL) {
        ngx_str_set(&mcf->chat.location, "/_telehealth_files/");
    }

    if (mcf->chat.files.len
        && ngx_conf_full_name(cf->cycle, &mcf->chat.files, 0) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (mcf->throttle.lock == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_throttle_lock\" must not be 0");
        return NGX_CONF_ERROR;
    }

    if (mcf->notify.interval == 0 || mcf->sms.timeout == 0
        || mcf->whatsapp.timeout == 0 || mcf->email.timeout == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_notify_interval\" and the "
            "\"telehealth_*_timeout\" directives must not "
            "be 0");
        return NGX_CONF_ERROR;
    }

    if (mcf->email.url.len && mcf->email.from.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_email_url\" needs "
            "\"telehealth_email_from\"");
        return NGX_CONF_ERROR;
    }

    if (mcf->templates.default_language.data == NULL) {
        ngx_str_set(&mcf->templates.default_language, "en");
    }

    /* counters shared by the workers (metrics.c) */
    if ((mcf->api || mcf->metrics)
        && ngx_http_telehealth_metrics_zone(cf, mcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* read on every start and reload: a broken file stops the reload */
    if (mcf->templates.dir.len
        && ngx_http_telehealth_templates_load(cf, &mcf->templates)
               != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_telehealth_idp_init_conf(cf, &mcf->idp) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (mcf->redis_prefix.data == NULL) {
        ngx_str_set(&mcf->redis_prefix, TH_REDIS_PREFIX_DEFAULT);
    }

    if (mcf->export_font.data == NULL) {
        ngx_str_set(&mcf->export_font, NGX_HTTP_TELEHEALTH_EXPORT_FONT);
    }

    if (mcf->redis.len
        && ngx_http_telehealth_revocations_conf(cf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (mcf->thread_pool_name.data == NULL) {
        ngx_str_set(&mcf->thread_pool_name, "default");
    }

    if (mcf->join_token_ttl < 1
        || mcf->join_token_ttl > NGX_HTTP_TELEHEALTH_JOIN_TTL_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_join_token_ttl\" must be "
            "between 1s and 60s");
        return NGX_CONF_ERROR;
    }

    if (mcf->access_token_ttl < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_access_token_ttl\" must be "
            "at least 1s");
        return NGX_CONF_ERROR;
    }

    if (mcf->purge.interval == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_purge_interval\" must not be 0");
        return NGX_CONF_ERROR;
    }

    if (mcf->timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_timeout\" must not be 0");
        return NGX_CONF_ERROR;
    }

    if (!mcf->api) {
        return NGX_CONF_OK;
    }

    /* what the API cannot work without, said at "nginx -t" time */

    if (mcf->postgres.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_api\" requires "
            "\"telehealth_postgres\"");
        return NGX_CONF_ERROR;
    }

    if (mcf->redis.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_api\" requires \"telehealth_redis\" "
            "or \"telehealth_redis_sentinel\"");
        return NGX_CONF_ERROR;
    }

    if (mcf->keyset == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_api\" requires "
            "\"telehealth_signing_key\"");
        return NGX_CONF_ERROR;
    }

    if (mcf->join_keyset == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"telehealth_api\" requires "
            "\"telehealth_join_key\"");
        return NGX_CONF_ERROR;
    }

    mcf->thread_pool = ngx_thread_pool_add(cf, &mcf->thread_pool_name);
    if (mcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_telehealth_password_dummy(cf, &mcf->dummy_hash) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_telehealth_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_telehealth_loc_conf_t *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_telehealth_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->api = NGX_CONF_UNSET;

    return lcf;
}


static char *
ngx_http_telehealth_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_telehealth_loc_conf_t *prev = parent;
    ngx_http_telehealth_loc_conf_t *conf = child;

    /* the handler is installed per location; the flag is for reference */
    ngx_conf_merge_value(conf->api, prev->api, 0);

    return NGX_CONF_OK;
}


static char *
ngx_http_telehealth_postgres(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    char             *err;
    ngx_str_t        *value;
    u_char           *p, *last;
    PQconninfoOption *opts, *o;

    if (mcf->postgres.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* rejects what libpq would only reject once a worker connects */
    opts = PQconninfoParse((char *) value[1].data, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "invalid \"telehealth_postgres\" conninfo: %s",
            err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }

        return NGX_CONF_ERROR;
    }

    /*
     * libpq resolves "host" names blocking inside PQconnectPoll(): accept
     * a numeric address, a socket directory, or a "hostaddr".
     */
    for (o = opts; o->keyword; o++) {
        if (ngx_strcmp(o->keyword, "hostaddr") == 0 && o->val && o->val[0]) {
            break;
        }
    }

    /* a multi-host list (primary and standbys): every host of it */
    if (o->keyword == NULL) {
        for (o = opts; o->keyword; o++) {
            if (ngx_strcmp(o->keyword, "host") == 0 && o->val != NULL) {
                break;
            }
        }

        for (p = (u_char *) (o->keyword ? o->val : ""); *p; p = last) {
            last = (u_char *) ngx_strchr(p, ',');
            if (last == NULL) {
                last = p + ngx_strlen(p);
            }

            if (last > p && *p != '/'
                && ngx_inet_addr(p, last - p) == INADDR_NONE
                && !ngx_http_telehealth_ipv6(p, last - p))
            {
                PQconninfoFree(opts);
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                    "\"telehealth_postgres\" host must be "
                    "a numeric address or a socket "
                    "directory (or set hostaddr): "
                    "names would be resolved blocking");
                return NGX_CONF_ERROR;
            }

            if (*last == ',') {
                last++;
            }
        }
    }

    PQconninfoFree(opts);

    mcf->postgres = value[1];

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_telehealth_ipv6(u_char *p, size_t len)
{
    u_char          buf[NGX_INET6_ADDRSTRLEN];
    struct in6_addr a6;

    if (len >= sizeof(buf)) {
        return 0;
    }

    ngx_cpystrn(buf, p, len + 1);

    return inet_pton(AF_INET6, (char *) buf, &a6) == 1;
}


static char *
ngx_http_telehealth_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    ngx_str_t *value;

    if (mcf->redis.data != NULL) {
        return mcf->redis_sentinels ? "conflicts with "
                                      "\"telehealth_redis_sentinel\""
                                    : "is duplicate";
    }

    value = cf->args->elts;
    mcf->redis = value[1];

    if (value[1].len > 5 && ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        mcf->redis_unix.data = value[1].data + 5;
        mcf->redis_unix.len = value[1].len - 5;
        return NGX_CONF_OK;
    }

    if (ngx_http_telehealth_redis_addr(cf, &value[1], &mcf->redis_host,
            &mcf->redis_port)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* address:port or [address]:port, numeric: host is made NUL-ended */

static ngx_int_t
ngx_http_telehealth_redis_addr(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *host, ngx_int_t *port)
{
    u_char         *p, *last, *colon;
    ngx_int_t       n;
    ngx_str_t       h, *name;
    struct in6_addr a6;

    name = cf->args->elts;
    p = value->data;
    last = p + value->len;

    if (p < last && *p == '[') {
        /* [::1]:6379 */
        colon = ngx_strlchr(p, last, ']');
        if (colon == NULL || colon + 1 >= last || colon[1] != ':') {
            goto invalid;
        }

        h.data = p + 1;
        h.len = colon - p - 1;
        colon++;

    } else {
        colon = ngx_strlchr(p, last, ':');
        if (colon == NULL) {
            goto invalid;
        }

        h.data = p;
        h.len = colon - p;
    }

    n = ngx_atoi(colon + 1, last - colon - 1);
    if (n < 1 || n > 65535 || h.len == 0) {
        goto invalid;
    }

    host->data = ngx_pnalloc(cf->pool, h.len + 1);
    if (host->data == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn(host->data, h.data, h.len + 1);
    host->len = h.len;
    *port = n;

    /* hiredis 0.14 resolves names blocking: numeric addresses only */
    if (ngx_inet_addr(h.data, h.len) == INADDR_NONE
        && inet_pton(AF_INET6, (char *) host->data, &a6) != 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"%V\" needs a numeric address, not a name: "
            "\"%V\"",
            &name[0], value);
        return NGX_ERROR;
    }

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
        "invalid \"%V\" address \"%V\", expected "
        "address:port%s",
        &name[0], value,
        name[0].len == sizeof("telehealth_redis") - 1 ? " or unix:/path" : "");

    return NGX_ERROR;
}


/*
 * telehealth_redis_auth user password_file: the ACL user and its password,
 * read here, by the master, so the file may be readable by root only.
 */

static char *
ngx_http_telehealth_redis_auth(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    u_char    *p, *last;
    ssize_t    n;
    ngx_fd_t   fd;
    ngx_str_t *value, file;
    u_char     buf[1024];

    if (mcf->redis_password.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    file = value[2];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
            ngx_open_file_n " \"%s\" failed", file.data);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));
    (void) ngx_close_file(fd);

    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
            ngx_read_fd_n " \"%s\" failed", file.data);
        return NGX_CONF_ERROR;
    }

    /* one line; the line break at its end is not part of the password */
    p = buf;
    last = buf + n;

    while (last > p && (last[-1] == '\n' || last[-1] == '\r')) {
        last--;
    }

    if (last == p || (size_t) n == sizeof(buf)
        || ngx_strlchr(p, last, '\n') != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"%s\" must hold one password of 1 to 1000 "
            "characters on one line",
            file.data);
        return NGX_CONF_ERROR;
    }

    mcf->redis_password.data = ngx_pnalloc(cf->pool, last - p + 1);
    if (mcf->redis_password.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(mcf->redis_password.data, p, last - p + 1);
    mcf->redis_password.len = last - p;
    ngx_explicit_memzero(buf, sizeof(buf));

    /* the arguments are NUL-terminated */
    mcf->redis_user = value[1];

    return NGX_CONF_OK;
}


/* telehealth_redis_sentinel name address:port ... */

static char *
ngx_http_telehealth_redis_sentinel(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    ngx_str_t                        *value;
    ngx_int_t                         port;
    ngx_uint_t                        i;
    ngx_http_telehealth_redis_addr_t *sn;

    if (mcf->redis.data != NULL) {
        return mcf->redis_sentinels ? "is duplicate"
                                    : "conflicts with \"telehealth_redis\"";
    }

    value = cf->args->elts;

    mcf->redis_sentinels = ngx_array_create(cf->pool, cf->args->nelts - 2,
        sizeof(ngx_http_telehealth_redis_addr_t));
    if (mcf->redis_sentinels == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf->redis = value[1];
    mcf->redis_master = value[1];

    for (i = 2; i < cf->args->nelts; i++) {
        sn = ngx_array_push(mcf->redis_sentinels);
        if (sn == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_http_telehealth_redis_addr(cf, &value[i], &sn->host, &port)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        sn->port = port;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_telehealth_signing_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    ngx_str_t  *value, path;
    const char *err;

    value = cf->args->elts;

    if (ngx_http_telehealth_keyset_make(cf, &mcf->keyset) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    path = value[2];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the first key signs, every key verifies */
    if (th_keyset_add_file(mcf->keyset, (char *) value[1].data,
            (char *) path.data, &err)
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
            "telehealth_signing_key \"%V\" \"%V\": %s", &value[1], &path, err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* telehealth_join_key kid file: an ES256 private key (PEM) */

static char *
ngx_http_telehealth_join_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    ngx_str_t  *value, path;
    const char *err;

    value = cf->args->elts;

    if (ngx_http_telehealth_keyset_make(cf, &mcf->join_keyset) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    path = value[2];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the first key signs; Janus verifies with the public halves */
    if (th_keyset_add_pem_file(mcf->join_keyset, (char *) value[1].data,
            (char *) path.data, &err)
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_join_key \"%V\" \"%V\": %s", &value[1], &path, err);
        return NGX_CONF_ERROR;
    }

    if (!mcf->join_keyset->keys[mcf->join_keyset->nkeys - 1].can_sign) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "telehealth_join_key \"%V\" \"%V\": not a "
            "private key",
            &value[1], &path);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* two counts (telehealth_console_streams, telehealth_invite_limit); 0 is
 * "no limit" */

static char *
ngx_http_telehealth_conf_set_two_uint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_uint_t *counts;
    ngx_int_t   n;
    ngx_str_t  *value;
    ngx_uint_t  i;

    counts = (ngx_uint_t *) ((char *) conf + cmd->offset);

    if (counts[0] != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < 2; i++) {
        n = ngx_atoi(value[i + 1].data, value[i + 1].len);
        if (n == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid number \"%V\"",
                &value[i + 1]);
            return NGX_CONF_ERROR;
        }

        counts[i] = n;
    }

    return NGX_CONF_OK;
}


/* telehealth_throttle_account|address free lock: failures without delay,
 * failures until locked (0: never locked) */

static char *
ngx_http_telehealth_throttle_limits(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_uint_t *limits;
    ngx_int_t   n;
    ngx_str_t  *value;
    ngx_uint_t  i;

    limits = (ngx_uint_t *) ((char *) conf + cmd->offset);

    if (limits[0] != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < 2; i++) {
        n = ngx_atoi(value[i + 1].data, value[i + 1].len);
        if (n == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid number \"%V\"",
                &value[i + 1]);
            return NGX_CONF_ERROR;
        }

        limits[i] = n;
    }

    if (limits[0] == 0 || (limits[1] && limits[1] < limits[0])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "\"%V\": the failures allowed must be at least "
            "1 and the lock at least as many (or 0)",
            &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* telehealth_throttle_backoff first [max]: the delay doubles up to max */

static char *
ngx_http_telehealth_throttle_backoff(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_telehealth_main_conf_t *mcf = conf;

    ngx_str_t *value;

    if (mcf->throttle.backoff != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mcf->throttle.backoff = ngx_parse_time(&value[1], 0);
    mcf->throttle.backoff_max = mcf->throttle.backoff;

    if (cf->args->nelts == 3) {
        mcf->throttle.backoff_max = ngx_parse_time(&value[2], 0);
    }

    if (mcf->throttle.backoff == (ngx_msec_t) NGX_ERROR
        || mcf->throttle.backoff_max == (ngx_msec_t) NGX_ERROR
        || mcf->throttle.backoff == 0
        || mcf->throttle.backoff_max < mcf->throttle.backoff)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "invalid \"telehealth_throttle_backoff\": the "
            "first delay must be more than 0 and at most "
            "the maximum");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the key set a directive adds to, made with the first of its keys */

static ngx_int_t
ngx_http_telehealth_keyset_make(ngx_conf_t *cf, th_keyset_t **keyset)
{
    ngx_pool_cleanup_t *cln;

    if (*keyset != NULL) {
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(cf->pool, sizeof(th_keyset_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(cln->data, sizeof(th_keyset_t));
    cln->handler = ngx_http_telehealth_keyset_cleanup;
    *keyset = cln->data;

    return NGX_OK;
}


static void
ngx_http_telehealth_keyset_cleanup(void *data)
{
    th_keyset_clear(data);
}


static char *
ngx_http_telehealth_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_telehealth_loc_conf_t *lcf = conf;

    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_telehealth_main_conf_t *mcf;

    if (lcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    lcf->api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_telehealth_api_handler;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_telehealth_module);
    mcf->api = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_telehealth_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_telehealth_main_conf_t *mcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_telehealth_metrics_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_telehealth_metrics_handler;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_telehealth_module);
    mcf->metrics = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_telehealth_init_process(ngx_cycle_t *cycle)
{
    ngx_http_telehealth_main_conf_t *mcf;

    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf =
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_telehealth_module);
    if (mcf == NULL) {
        return NGX_OK;
    }

    if (mcf->postgres.len) {
        if (ngx_http_telehealth_pg_init_process(cycle, &mcf->postgres,
                mcf->pool_size, mcf->timeout)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (mcf->redis.len) {
        if (ngx_http_telehealth_redis_init_process(cycle, mcf) != NGX_OK
            || ngx_http_telehealth_revocations_init_process(cycle, mcf)
                   != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_telehealth_curl_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_telehealth_metrics_init_process(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* every worker delivers: rows are claimed with SKIP LOCKED */
    if (mcf->notify.enable && mcf->api && mcf->postgres.len && mcf->redis.len) {
        if (ngx_http_telehealth_notify_init_process(cycle, mcf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* every worker holds console streams */
    if (mcf->api && mcf->postgres.len && mcf->redis.len) {
        if (ngx_http_telehealth_console_init_process(cycle, mcf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* one consumer per nginx instance is enough: the first worker */
    if (mcf->events && mcf->postgres.len && mcf->redis.len && ngx_worker == 0) {
        if (ngx_http_telehealth_events_init_process(cycle, mcf) != NGX_OK) {
            return NGX_ERROR;
        }

        /* the same worker compares PostgreSQL and Redis (reconcile.c) */
        if (ngx_http_telehealth_reconcile_init_process(cycle, mcf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* one purge job per nginx instance too; SKIP LOCKED between them */
    if (mcf->api && mcf->postgres.len && mcf->redis.len && ngx_worker == 0) {
        if (ngx_http_telehealth_purge_init_process(cycle, mcf, &mcf->chat.files)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_telehealth_purge_exit_process();
    ngx_http_telehealth_metrics_exit_process();
    ngx_http_telehealth_console_exit_process();
    ngx_http_telehealth_notify_exit_process();
    ngx_http_telehealth_curl_exit_process();
    ngx_http_telehealth_events_exit_process();
    ngx_http_telehealth_reconcile_exit_process();
    ngx_http_telehealth_redis_exit_process();
    ngx_http_telehealth_pg_exit_process();
}
