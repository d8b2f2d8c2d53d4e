/*
 * ngx_http_telehealth_module: configuration shared by every concern of the
 * module; this header only holds what all of them read.  Each concern has
 * its own file (ngx_http_telehealth_<name>.c, with a header of the same
 * name where others call it):
 *
 *   module          directives, configuration, worker start and end
 *   api             routes, body, authentication, JSON and problem answers
 *   records         routes answered by th_api(op) and their "then" steps
 *   auth            access tokens: login, refresh, verification
 *   password        argon2id verification on the thread pool
 *   idp             the identity provider's tokens and its directives
 *   throttle        back-off and locks of guessable endpoints in Redis
 *   revoke          cutting off a deactivated person's rooms at once
 *   session         starting sessions: access check, room script, records
 *   session_read    GET /sessions/{id} and a patient's open-only list
 *   join            join credentials, opening a scheduled session's room
 *   redeem          POST /invites/redeem: an invite link's credential
 *   session_shared  (header only) what the four session files share
 *   live            a room's live state from its members hash
 *   command         a chair's room commands to the room's Janus node
 *   events          the consumer of the plugin's event stream
 *   reconcile       repairs between PostgreSQL's sessions and Redis' rooms
 *   purge           deleting the content of sessions ended long enough
 *   export          GET /sessions/{id}/export.pdf (libharu, thread pool)
 *   console         console streams (server-sent events)
 *   notify          the outbox courier and its providers' directives
 *   template        notification templates
 *   mail            the e-mail form of a message and its directives
 *   curl            libcurl's multi-socket API on the event loop
 *   pg              libpq on the event loop: pool, queries, values, uuids
 *   redis           hiredis on the event loop
 *   conn            the nginx connection around a library's socket
 *
 * common/ (compiled into the Janus plugin too): th_names.h, the names
 * both sides use (Redis keys and fields, kinds); th_token.c, access tokens
 * and join credentials (JWTs signed with a key set).
 */

#ifndef _NGX_HTTP_TELEHEALTH_MODULE_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "th_names.h"
#include "th_token.h"


/* one verification key of the identity provider's JWKS file */
typedef struct {
    ngx_str_t   kid;
    const char *alg; /* "RS256" or "ES256", by the key's type */
    void       *jwk; /* cjose_jwk_t, released with the cycle's pool */
} ngx_http_telehealth_idp_key_t;


typedef struct {
    ngx_str_t    jwks; /* file name; empty: no IdP */
    ngx_str_t    issuer;
    ngx_str_t    audience;
    ngx_str_t    claim; /* "email", or matched against
                                               staff.idp_subject */
    time_t       leeway;
    ngx_array_t *keys; /* ngx_http_telehealth_idp_key_t */
} ngx_http_telehealth_idp_conf_t;


#define NGX_HTTP_TELEHEALTH_PROVIDER_FORM 0
#define NGX_HTTP_TELEHEALTH_PROVIDER_JSON 1


/*
 * A messaging provider's HTTP API: telehealth_sms_* for SMS and
 * telehealth_whatsapp_* for WhatsApp configure one each.
 */
typedef struct {
    ngx_str_t    url;    /* NUL-ended; empty: none */
    ngx_str_t    auth;   /* Authorization header value */
    ngx_uint_t   format; /* NGX_HTTP_TELEHEALTH_PROVIDER_* */
    ngx_str_t    to_field;
    ngx_str_t    text_field;
    ngx_array_t *params;       /* ngx_keyval_t, fixed fields */
    ngx_str_t    sender_field; /* an organisation's sender, SMS */
    ngx_msec_t   timeout;
} ngx_http_telehealth_provider_conf_t;


#define NGX_HTTP_TELEHEALTH_STARTTLS_OFF      0
#define NGX_HTTP_TELEHEALTH_STARTTLS_OPTIONAL 1
#define NGX_HTTP_TELEHEALTH_STARTTLS_REQUIRED 2


/* e-mail over SMTP (telehealth_email_*) */
typedef struct {
    ngx_str_t  url;       /* smtp(s)://, NUL-ended */
    ngx_uint_t starttls;  /* NGX_HTTP_TELEHEALTH_STARTTLS_* */
    ngx_str_t  from;      /* address, NUL-ended */
    ngx_str_t  from_name; /* may be empty */
    ngx_str_t  domain;    /* of from, for Message-ID */
    ngx_str_t  user;      /* NUL-ended; empty: no AUTH */
    ngx_str_t  password;  /* NUL-ended */
    ngx_str_t  trusted;   /* CA PEM; empty: system's */
    ngx_msec_t timeout;
} ngx_http_telehealth_email_conf_t;


/* the texts of notifications (telehealth_templates) */
typedef struct {
    ngx_str_t    dir; /* empty: none */
    ngx_str_t    default_language;
    ngx_array_t *list; /* NULL: none loaded */
} ngx_http_telehealth_templates_conf_t;


/* the delivery of the notification outbox (telehealth_notify_*) */
typedef struct {
    ngx_flag_t enable;
    ngx_msec_t interval; /* between looks for due rows */
    ngx_msec_t backoff;  /* after a first failure */
    ngx_msec_t backoff_max;
    ngx_uint_t attempts; /* then "failed" */
    ngx_uint_t batch;
    time_t     interpreter_timeout; /* s, then "unavailable" */
} ngx_http_telehealth_notify_conf_t;


/* throttling of login, redeem and decide (telehealth_throttle_*) */
typedef struct {
    ngx_uint_t subject_free; /* failures without delay */
    ngx_uint_t subject_lock; /* failures, then locked */
    ngx_uint_t addr_free;
    ngx_uint_t addr_lock;
    ngx_msec_t backoff; /* the first delay */
    ngx_msec_t backoff_max;
    ngx_msec_t lock;             /* and failures forgotten */
    ngx_uint_t password_pending; /* argon2 tasks per worker */
} ngx_http_telehealth_throttle_conf_t;


/* the purge of ended sessions' content (telehealth_purge_*) */
typedef struct {
    time_t     after;    /* s after the session ended */
    ngx_msec_t interval; /* between rounds */
} ngx_http_telehealth_purge_conf_t;


/* a sentinel's numeric address */
typedef struct {
    ngx_str_t  host; /* NUL-ended */
    ngx_uint_t port;
} ngx_http_telehealth_redis_addr_t;
/* chat attachments and their scan (telehealth_chat_*, telehealth_clamd*) */
typedef struct {
    ngx_str_t  files;    /* the store; empty: no files */
    ngx_str_t  location; /* internal, serves the store */
    off_t      max_file_size;
    ngx_url_t *clamd; /* NULL: no scan */
    ngx_msec_t clamd_timeout;
} ngx_http_telehealth_chat_conf_t;


typedef struct {
    ngx_str_t  postgres;  /* libpq conninfo */
    ngx_uint_t pool_size; /* PostgreSQL connections/worker */

    ngx_str_t    redis;      /* as written in nginx.conf */
    ngx_str_t    redis_host; /* numeric address, NUL-ended */
    ngx_str_t    redis_unix; /* socket path, NUL-ended */
    ngx_int_t    redis_port;
    ngx_str_t    redis_prefix;    /* NUL-ended */
    ngx_str_t    redis_user;      /* NUL-ended; empty: "default" */
    ngx_str_t    redis_password;  /* NUL-ended, from a file */
    ngx_str_t    redis_master;    /* Sentinel's name, NUL-ended */
    ngx_array_t *redis_sentinels; /* of ..._redis_addr_t */

    th_keyset_t                        *keyset; /* NULL: no key configured */
    th_keyset_t                        *join_keyset; /* ES256, signs join
                                               credentials */
    ngx_http_telehealth_throttle_conf_t throttle;
    ngx_http_telehealth_idp_conf_t      idp;

    time_t    access_token_ttl;
    time_t    join_token_ttl;
    ngx_str_t public_url;

    ngx_str_t          thread_pool_name;
    ngx_thread_pool_t *thread_pool;

    ngx_str_t export_font; /* TrueType file, NUL-ended */

    ngx_msec_t                       timeout; /* one PostgreSQL/Redis call */
    size_t                           max_body_size;
    ngx_flag_t                       events;
    ngx_msec_t                       reconcile_interval; /* 0: no reconciler */
    ngx_http_telehealth_purge_conf_t purge;

    ngx_http_telehealth_notify_conf_t    notify;
    ngx_http_telehealth_provider_conf_t  sms;
    ngx_http_telehealth_provider_conf_t  whatsapp;
    ngx_http_telehealth_email_conf_t     email;
    ngx_http_telehealth_templates_conf_t templates;
    ngx_msec_t                           video_call_sms_delay;

    ngx_msec_t console_heartbeat; /* comment line on each stream */
    time_t     console_retention; /* console_events kept */
    /* open consoles: per person, per worker (0: no cap) */
    ngx_uint_t console_streams[2];

    /* invites created or resent an hour: per staff member, per
     * organisation (0: no limit) */
    ngx_uint_t invite_limit[2];

    /* s, 0: kept (the first worker's retention job) */
    time_t retention_notifications;
    time_t retention_processed_events;
    time_t retention_invites;

    ngx_http_telehealth_chat_conf_t chat;

    /* argon2id hash of nothing: unknown e-mails are verified against it */
    ngx_str_t dummy_hash;

    ngx_uint_t api;     /* some location has the API */
    ngx_uint_t metrics; /* telehealth_metrics is used */
} ngx_http_telehealth_main_conf_t;


typedef struct {
    ngx_flag_t api;
} ngx_http_telehealth_loc_conf_t;


extern ngx_module_t ngx_http_telehealth_module;


#endif /* _NGX_HTTP_TELEHEALTH_MODULE_H_INCLUDED_ */
