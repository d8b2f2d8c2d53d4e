/*
 * The API's front door: matches the path below the location's prefix to a
 * route, reads and parses the JSON body within telehealth_max_body_size,
 * authenticates where the route needs it, and answers with JSON or
 * application/problem+json.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#include "ngx_http_telehealth_api.h"
#include "ngx_http_telehealth_metrics.h"
#include "ngx_http_telehealth_auth.h"
#include "ngx_http_telehealth_session.h"
#include "ngx_http_telehealth_records.h"
#include "ngx_http_telehealth_redis.h"
#include "ngx_http_telehealth_console.h"
#include "ngx_http_telehealth_live.h"
#include "ngx_http_telehealth_command.h"
#include "ngx_http_telehealth_throttle.h"
#include "ngx_http_telehealth_export.h"
#include "ngx_http_telehealth_chat.h"


#define NGX_HTTP_TELEHEALTH_RETRY_AFTER "1"


typedef struct {
    ngx_str_t                      path; /* "*" matches one segment */
    ngx_uint_t                     method;
    ngx_http_telehealth_handler_pt handler;
    ngx_uint_t                     auth;
    const char                    *op;   /* th_api() operation */
    ngx_http_telehealth_then_pt    then; /* then, with its answer */
} ngx_http_telehealth_route_t;


/* a route answered by th_api(op) in PostgreSQL (records.c) */
#define ngx_http_telehealth_record(path, method, op)                        \
    { ngx_string(path), method, ngx_http_telehealth_records_handler, 1, op, \
        NULL }

/* th_api(op) for the session's guests too (a redeemed link's token) */
#define ngx_http_telehealth_record_guests(path, method, op, then)           \
    { ngx_string(path), method, ngx_http_telehealth_records_handler, 2, op, \
        then }

/* th_api(op), then a step of the module with its answer */
#define ngx_http_telehealth_record_then(path, method, op, then)             \
    { ngx_string(path), method, ngx_http_telehealth_records_handler, 1, op, \
        then }


typedef struct {
    ngx_str_t   type;
    const char *title;
    const char *detail;
    ngx_uint_t  status;
} ngx_http_telehealth_problem_t;


static const ngx_http_telehealth_route_t *
ngx_http_telehealth_route(ngx_http_request_t *r, ngx_str_t *path, ngx_str_t *id,
    ngx_str_t *id2, ngx_str_t *allow);
static ngx_uint_t ngx_http_telehealth_match(ngx_str_t *pattern, ngx_str_t *path,
    ngx_str_t *id, ngx_str_t *id2);
static void ngx_http_telehealth_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_telehealth_read_body(ngx_http_request_t *r,
    ngx_http_telehealth_ctx_t                                     *ctx);
static ngx_int_t ngx_http_telehealth_send_text(ngx_http_request_t *r,
    ngx_uint_t status, u_char *text, size_t len, ngx_uint_t problem);
static ngx_int_t ngx_http_telehealth_send_typed(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json, ngx_uint_t problem);
static void ngx_http_telehealth_json_cleanup(void *data);


static const ngx_http_telehealth_route_t ngx_http_telehealth_routes[] = {

    { ngx_string("/auth/login"), NGX_HTTP_POST, ngx_http_telehealth_auth_login,
        0, NULL, NULL },

    { ngx_string("/auth/logout"), NGX_HTTP_POST,
        ngx_http_telehealth_auth_logout, 1, NULL, NULL },

    { ngx_string("/me"), NGX_HTTP_GET, ngx_http_telehealth_auth_me, 1, NULL,
        NULL },

    /* authenticates itself: a bearer token or a ticket */
    { ngx_string("/me/events"), NGX_HTTP_GET,
        ngx_http_telehealth_console_events, 0, NULL, NULL },

    { ngx_string("/me/events/ticket"), NGX_HTTP_POST,
        ngx_http_telehealth_console_ticket, 2, NULL, NULL },

    ngx_http_telehealth_record_then("/sessions", NGX_HTTP_GET, "session_list",
        ngx_http_telehealth_session_list_open),

    { ngx_string("/sessions"), NGX_HTTP_POST,
        ngx_http_telehealth_session_create, 1, NULL, NULL },

    { ngx_string("/sessions/*"), NGX_HTTP_GET, ngx_http_telehealth_session_get,
        1, NULL, NULL },

    { ngx_string("/sessions/*/join"), NGX_HTTP_POST,
        ngx_http_telehealth_session_join, 1, NULL, NULL },

    { ngx_string("/sessions/*/export.pdf"), NGX_HTTP_GET,
        ngx_http_telehealth_export_pdf, 1, NULL, NULL },

    ngx_http_telehealth_record("/staff", NGX_HTTP_GET, "staff_list"),
    ngx_http_telehealth_record("/staff", NGX_HTTP_POST, "staff_create"),
    /* the list's filters in the body: no name or e-mail in the URL */
    ngx_http_telehealth_record("/staff/search", NGX_HTTP_POST, "staff_search"),
    ngx_http_telehealth_record("/staff/*", NGX_HTTP_GET, "staff_get"),
    ngx_http_telehealth_record("/staff/*", NGX_HTTP_PATCH, "staff_update"),
    ngx_http_telehealth_record("/staff/*", NGX_HTTP_DELETE, "staff_deactivate"),

    ngx_http_telehealth_record("/patients", NGX_HTTP_GET, "patient_list"),
    ngx_http_telehealth_record("/patients", NGX_HTTP_POST, "patient_create"),
    ngx_http_telehealth_record("/patients/search", NGX_HTTP_POST,
        "patient_search"),
    ngx_http_telehealth_record("/patients/*", NGX_HTTP_GET, "patient_get"),
    ngx_http_telehealth_record("/patients/*", NGX_HTTP_PATCH, "patient_update"),
    ngx_http_telehealth_record("/patients/*/assignments", NGX_HTTP_GET,
        "patient_assignments"),
    ngx_http_telehealth_record("/patients/*/assignments", NGX_HTTP_POST,
        "patient_assign"),
    ngx_http_telehealth_record("/patients/*/assignments/*", NGX_HTTP_DELETE,
        "patient_unassign"),
    ngx_http_telehealth_record("/patients/*/calls", NGX_HTTP_GET,
        "patient_calls"),
    ngx_http_telehealth_record("/patients/*/engagements", NGX_HTTP_GET,
        "patient_engagements"),

    ngx_http_telehealth_record("/patients/*/files", NGX_HTTP_GET,
        "patient_files"),
    ngx_http_telehealth_record_then("/patients/*/files/*", NGX_HTTP_GET,
        "patient_file_get", ngx_http_telehealth_chat_send),

    /* chat: everyone in the session, guests included (chat.c) */
    ngx_http_telehealth_record_guests("/sessions/*/messages", NGX_HTTP_GET,
        "chat_list", NULL),
    ngx_http_telehealth_record_guests("/sessions/*/messages", NGX_HTTP_POST,
        "chat_post", NULL),
    { ngx_string("/sessions/*/files"), NGX_HTTP_POST,
        ngx_http_telehealth_chat_upload, 2, "chat_file_add", NULL },
    ngx_http_telehealth_record_guests("/sessions/*/files/*", NGX_HTTP_GET,
        "chat_file_get", ngx_http_telehealth_chat_send),

    ngx_http_telehealth_record_then("/sessions/*", NGX_HTTP_PATCH,
        "session_update", ngx_http_telehealth_live_updated),
    ngx_http_telehealth_record_then("/sessions/*/participants", NGX_HTTP_GET,
        "session_participants", ngx_http_telehealth_live_members),

    /* room commands: PostgreSQL builds them, the room's node runs them */
    ngx_http_telehealth_record_then("/sessions/*/close", NGX_HTTP_POST,
        "session_close", ngx_http_telehealth_command_then),
    ngx_http_telehealth_record_then("/sessions/*/participants/*/remove",
        NGX_HTTP_POST, "session_remove", ngx_http_telehealth_command_then),
    ngx_http_telehealth_record_then("/sessions/*/participants/*/mute",
        NGX_HTTP_POST, "session_mute", ngx_http_telehealth_command_then),
    ngx_http_telehealth_record_then("/sessions/*/participants/*/role",
        NGX_HTTP_POST, "session_role", ngx_http_telehealth_command_then),

    ngx_http_telehealth_record_then("/sessions/*/breakouts", NGX_HTTP_POST,
        "session_breakout_create", ngx_http_telehealth_command_then),
    ngx_http_telehealth_record_then("/sessions/*/breakouts/*", NGX_HTTP_DELETE,
        "session_breakout_close", ngx_http_telehealth_command_then),
    ngx_http_telehealth_record_then("/sessions/*/participants/*/breakout",
        NGX_HTTP_POST, "session_breakout_move",
        ngx_http_telehealth_command_then),

    ngx_http_telehealth_record("/sessions/*/engagements", NGX_HTTP_POST,
        "engagement_create"),

    ngx_http_telehealth_record("/sessions/*/bans", NGX_HTTP_GET,
        "session_bans"),
    ngx_http_telehealth_record("/sessions/*/registrations", NGX_HTTP_GET,
        "session_registrations"),
    ngx_http_telehealth_record("/sessions/*/registrations/admit", NGX_HTTP_POST,
        "registration_admit_all"),
    ngx_http_telehealth_record("/sessions/*/registrations/*/admit",
        NGX_HTTP_POST, "registration_admit"),
    ngx_http_telehealth_record_then("/sessions/*/bans/*", NGX_HTTP_DELETE,
        "session_ban_lift", ngx_http_telehealth_live_ban_lifted),

    /* hourly limits per staff member and organisation, then th_api() */
    { ngx_string("/sessions/*/invites"), NGX_HTTP_POST,
        ngx_http_telehealth_throttle_invites, 1, "invite_create", NULL },
    ngx_http_telehealth_record("/sessions/*/invites", NGX_HTTP_GET,
        "invite_list"),
    ngx_http_telehealth_record("/sessions/*/invites/*", NGX_HTTP_DELETE,
        "invite_revoke"),
    { ngx_string("/sessions/*/invites/*/resend"), NGX_HTTP_POST,
        ngx_http_telehealth_throttle_invites, 1, "invite_resend", NULL },
    ngx_http_telehealth_record("/sessions/*/invites/*/extend", NGX_HTTP_POST,
        "invite_extend"),

    { ngx_string("/invites/redeem"), NGX_HTTP_POST,
        ngx_http_telehealth_throttle_redeem, 0, NULL, NULL },

    ngx_http_telehealth_record("/interpreting-organisations", NGX_HTTP_GET,
        "interp_org_list"),
    ngx_http_telehealth_record("/interpreting-organisations", NGX_HTTP_POST,
        "interp_org_create"),
    ngx_http_telehealth_record("/interpreting-organisations/*", NGX_HTTP_GET,
        "interp_org_get"),
    ngx_http_telehealth_record("/interpreting-organisations/*", NGX_HTTP_PATCH,
        "interp_org_update"),
    ngx_http_telehealth_record("/interpreting-organisations/*", NGX_HTTP_DELETE,
        "interp_org_deactivate"),
    ngx_http_telehealth_record("/sessions/*/interpreter-requests", NGX_HTTP_GET,
        "interpreter_request_list"),
    ngx_http_telehealth_record("/sessions/*/interpreter-requests",
        NGX_HTTP_POST, "interpreter_request_create"),

    /* a manager's accept or refuse link: th_public(), no access token */
    { ngx_string("/interpreter-requests/decide"), NGX_HTTP_POST,
        ngx_http_telehealth_throttle_decide, 0, "interpreter_decide", NULL },
    ngx_http_telehealth_record("/service-codes", NGX_HTTP_GET,
        "service_code_list"),
    ngx_http_telehealth_record("/service-codes", NGX_HTTP_POST,
        "service_code_create"),
    ngx_http_telehealth_record("/service-codes/*", NGX_HTTP_GET,
        "service_code_get"),
    ngx_http_telehealth_record("/service-codes/*", NGX_HTTP_PATCH,
        "service_code_update"),

    ngx_http_telehealth_record("/appointments", NGX_HTTP_GET,
        "appointment_list"),
    ngx_http_telehealth_record("/appointments", NGX_HTTP_POST,
        "appointment_create"),
    ngx_http_telehealth_record("/appointments/*", NGX_HTTP_GET,
        "appointment_get"),
    ngx_http_telehealth_record("/appointments/*", NGX_HTTP_PATCH,
        "appointment_update"),
    ngx_http_telehealth_record_then("/appointments/*/session", NGX_HTTP_POST,
        "appointment_session", ngx_http_telehealth_session_from_appointment),

    ngx_http_telehealth_record("/visits", NGX_HTTP_GET, "visit_list"),
    ngx_http_telehealth_record("/visits", NGX_HTTP_POST, "visit_create"),
    ngx_http_telehealth_record("/visits/*", NGX_HTTP_GET, "visit_get"),
    ngx_http_telehealth_record("/visits/*/invite", NGX_HTTP_POST,
        "visit_invite"),
    ngx_http_telehealth_record("/visits/*/clock-in", NGX_HTTP_POST,
        "visit_clock_in"),
    ngx_http_telehealth_record("/visits/*/clock-out", NGX_HTTP_POST,
        "visit_clock_out"),
    ngx_http_telehealth_record("/patients/*/video-consent", NGX_HTTP_POST,
        "patient_consent_give"),
    ngx_http_telehealth_record("/patients/*/video-consent", NGX_HTTP_DELETE,
        "patient_consent_withdraw"),

    ngx_http_telehealth_record("/audit", NGX_HTTP_GET, "audit_list"),

    ngx_http_telehealth_record("/organisation", NGX_HTTP_GET, "org_get"),
    ngx_http_telehealth_record("/organisation", NGX_HTTP_PATCH, "org_update"),

    { ngx_string("/health"), NGX_HTTP_GET, ngx_http_telehealth_health, 0, NULL,
        NULL },

    { ngx_null_string, 0, NULL, 0, NULL, NULL }
};


/* indexed by ngx_http_telehealth_problem_e */
static const ngx_http_telehealth_problem_t ngx_http_telehealth_problems[] = {

    { ngx_string("urn:telehealth:problem:invalid-request"), "Invalid request",
        "The request is not valid.", NGX_HTTP_BAD_REQUEST },

    { ngx_string("urn:telehealth:problem:unauthorized"), "Unauthorized",
        "Please log in again.", NGX_HTTP_UNAUTHORIZED },

    { ngx_string("urn:telehealth:problem:invalid-credentials"),
        "Invalid credentials",
        "The e-mail address or the password is not correct.",
        NGX_HTTP_UNAUTHORIZED },

    { ngx_string("urn:telehealth:problem:forbidden"), "Forbidden",
        "You are not allowed to do this.", NGX_HTTP_FORBIDDEN },

    { ngx_string("urn:telehealth:problem:not-found"), "Not found",
        "There is nothing here.", NGX_HTTP_NOT_FOUND },

    { ngx_string("urn:telehealth:problem:method-not-allowed"),
        "Method not allowed", "This method is not allowed here.",
        NGX_HTTP_NOT_ALLOWED },

    { ngx_string("urn:telehealth:problem:patient-in-session"),
        "Patient in session", "The participant is already in a video session.",
        NGX_HTTP_CONFLICT },

    { ngx_string("urn:telehealth:problem:room-not-open"), "Room not open",
        "The video room of this session is not open.", NGX_HTTP_CONFLICT },

    { ngx_string("urn:telehealth:problem:banned"), "Removed from the session",
        "You were removed from this session. Please ask the person who "
        "invited you.",
        NGX_HTTP_FORBIDDEN },

    { ngx_string("urn:telehealth:problem:conflict"), "Conflict",
        "This conflicts with the current state of the record.",
        NGX_HTTP_CONFLICT },

    { ngx_string("urn:telehealth:problem:precondition-failed"),
        "Precondition failed",
        "Someone else changed this record meanwhile. Reload it and try again.",
        NGX_HTTP_PRECONDITION_FAILED },

    { ngx_string("urn:telehealth:problem:payload-too-large"),
        "Payload too large", "The request body is too large.",
        NGX_HTTP_REQUEST_ENTITY_TOO_LARGE },

    { ngx_string("urn:telehealth:problem:validation"), "Validation failed",
        "Some values are not valid.", 422 },

    { ngx_string("urn:telehealth:problem:invite-not-found"), "Invite not found",
        "This link is not valid. Please ask for a new one.",
        NGX_HTTP_NOT_FOUND },

    { ngx_string("urn:telehealth:problem:invite-used"), "Invite used",
        "This link has already been used.", 410 },

    { ngx_string("urn:telehealth:problem:invite-expired"), "Invite expired",
        "This link has expired. Please ask for a new one.", 410 },

    { ngx_string("urn:telehealth:problem:no-email"), "No e-mail address",
        "Client has no email.", 422 },

    { ngx_string("urn:telehealth:problem:no-mobile"), "No mobile number",
        "Client has no mobile number.", 422 },

    { ngx_string("urn:telehealth:problem:not-sms-capable"), "Not SMS capable",
        "Client's number cannot receive SMS.", 422 },

    { ngx_string("urn:telehealth:problem:no-whatsapp"), "No WhatsApp number",
        "Client has no WhatsApp number.", 422 },

    { ngx_string("urn:telehealth:problem:session-in-progress"),
        "Session in progress",
        "Third parties can only be invited before the session starts.",
        NGX_HTTP_CONFLICT },

    { ngx_string("urn:telehealth:problem:third-parties-at-creation"),
        "Third parties at creation only",
        "Third parties can only be invited when the invite is created.", 422 },

    { ngx_string("urn:telehealth:problem:no-interpreter"), "No interpreter",
        "No interpreting organisation covers this language.", 422 },

    { ngx_string("urn:telehealth:problem:request-answered"), "Request answered",
        "This request has already been answered.", 410 },

    { ngx_string("urn:telehealth:problem:clock-in-required"),
        "Clock-in required",
        "You must clock into the visit before you can join the video "
        "session.",
        NGX_HTTP_CONFLICT },

    { ngx_string("urn:telehealth:problem:video-session-active"),
        "Video session active",
        "The video session with your client is still active. Clocking out "
        "will not close the video session so make sure you hang up on the "
        "video session as well. Would you like to clock out anyway?",
        NGX_HTTP_CONFLICT },

    { ngx_string("urn:telehealth:problem:visit-over"), "Visit video over",
        "The caregiver ended the video session of this visit: it cannot be "
        "started again.",
        NGX_HTTP_CONFLICT },

    { ngx_string("urn:telehealth:problem:no-video-consent"),
        "No consent to video",
        "The client has not consented to video. Record their consent "
        "before starting a video call.",
        NGX_HTTP_CONFLICT },

    { ngx_string("urn:telehealth:problem:service-unavailable"),
        "Service unavailable",
        "The service is temporarily unavailable. Please try again shortly.",
        NGX_HTTP_SERVICE_UNAVAILABLE },

    { ngx_string("urn:telehealth:problem:too-many-attempts"),
        "Too many attempts",
        "Too many failed attempts. Please wait before trying again.",
        NGX_HTTP_TOO_MANY_REQUESTS },

    { ngx_string("urn:telehealth:problem:rate-limited"), "Too many requests",
        "Too many requests of this kind for now. Please try again later.",
        NGX_HTTP_TOO_MANY_REQUESTS },

    { ngx_string("urn:telehealth:problem:unsupported-media-type"),
        "Unsupported file type",
        "Only JPEG and PNG images and PDF documents can be attached.",
        NGX_HTTP_UNSUPPORTED_MEDIA_TYPE },

    { ngx_string("urn:telehealth:problem:malware-detected"), "Malware detected",
        "This file contains malware and was refused.", 422 },

    { ngx_string("urn:telehealth:problem:schema-mismatch"), "Schema mismatch",
        "The service is being upgraded. Please try again shortly.",
        NGX_HTTP_SERVICE_UNAVAILABLE },

    { ngx_string("urn:telehealth:problem:internal"), "Internal error",
        "Something went wrong on our side.", NGX_HTTP_INTERNAL_SERVER_ERROR }
};


ngx_int_t
ngx_http_telehealth_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_str_t                          path, allow;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_telehealth_ctx_t         *ctx;
    const ngx_http_telehealth_route_t *route;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->mcf = ngx_http_get_module_main_conf(r, ngx_http_telehealth_module);
    ngx_http_set_ctx(r, ctx, ngx_http_telehealth_module);

    /*
     * If-Match is checked against the record in PostgreSQL, before the
     * change; nginx's own check would compare it with the new ETag after.
     */
    r->disable_not_modified = 1;

    /* routes are relative to the location: "/api/v1/" + "me" -> "/me" */
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ctx->base = clcf->name;
    if (ctx->base.len && ctx->base.data[ctx->base.len - 1] == '/') {
        ctx->base.len--;
    }

    path = r->uri;

    if (path.len >= ctx->base.len
        && ngx_strncmp(path.data, ctx->base.data, ctx->base.len) == 0)
    {
        path.data += ctx->base.len;
        path.len -= ctx->base.len;

    } else {
        ngx_str_null(&path);
    }

    ctx->path = path;

    route = ngx_http_telehealth_route(r, &path, &ctx->id, &ctx->id2, &allow);

    if (route == NULL || allow.len) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (route == NULL && allow.len == 0) {
            return ngx_http_telehealth_send_problem(r,
                NGX_HTTP_TELEHEALTH_NOT_FOUND, NULL);
        }

        if (ngx_http_telehealth_add_header(r, "Allow", allow.data, allow.len)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_telehealth_send_problem(r,
            NGX_HTTP_TELEHEALTH_METHOD_NOT_ALLOWED, NULL);
    }

    ctx->data = (void *) route;
    ctx->route = route - ngx_http_telehealth_routes + 1;

    /* an older or newer database: one answer for every route */
    if (ngx_http_telehealth_schema_mismatch() != NULL
        && route->handler != ngx_http_telehealth_health)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_telehealth_send_problem(r,
            NGX_HTTP_TELEHEALTH_SCHEMA_MISMATCH,
            ngx_http_telehealth_schema_mismatch());
    }

    /* an attachment: nginx writes the body to a file, whatever its size */
    if (route->handler == ngx_http_telehealth_chat_upload) {
        return ngx_http_telehealth_chat_read(r,
            ngx_http_telehealth_body_handler);
    }

    if (r->headers_in.content_length_n > (off_t) ctx->mcf->max_body_size) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_telehealth_send_problem(r,
            NGX_HTTP_TELEHEALTH_PAYLOAD_TOO_LARGE, NULL);
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_telehealth_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static const ngx_http_telehealth_route_t *
ngx_http_telehealth_route(ngx_http_request_t *r, ngx_str_t *path, ngx_str_t *id,
    ngx_str_t *id2, ngx_str_t *allow)
{
    u_char                            *p;
    ngx_str_t                          a, b;
    ngx_uint_t                         method, allowed, i;
    const ngx_http_telehealth_route_t *rt, *found;

    static const struct {
        ngx_uint_t method;
        ngx_str_t  name;
    } methods[] = { { NGX_HTTP_GET, ngx_string("GET, HEAD") },
        { NGX_HTTP_POST, ngx_string("POST") },
        { NGX_HTTP_PATCH, ngx_string("PATCH") },
        { NGX_HTTP_DELETE, ngx_string("DELETE") } };

    method = (r->method == NGX_HTTP_HEAD) ? NGX_HTTP_GET : r->method;
    allowed = 0;
    found = NULL;

    ngx_str_null(allow);

    for (rt = ngx_http_telehealth_routes; rt->handler; rt++) {
        ngx_str_null(&a);
        ngx_str_null(&b);

        if (!ngx_http_telehealth_match((ngx_str_t *) &rt->path, path, &a, &b)) {
            continue;
        }

        allowed |= rt->method;

        if (rt->method == method) {
            found = rt;
            *id = a;
            *id2 = b;
        }
    }

    if (found != NULL || allowed == 0) {
        return found;
    }

    allow->data =
        ngx_pnalloc(r->pool, sizeof("GET, HEAD, POST, PATCH, DELETE") - 1);
    if (allow->data == NULL) {
        return NULL;
    }

    p = allow->data;

    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (!(allowed & methods[i].method)) {
            continue;
        }

        if (p != allow->data) {
            *p++ = ',';
            *p++ = ' ';
        }

        p = ngx_cpymem(p, methods[i].name.data, methods[i].name.len);
    }

    allow->len = p - allow->data;

    return NULL;
}


/* "*" captures one path segment: the first into id, the second into id2 */

static ngx_uint_t
ngx_http_telehealth_match(ngx_str_t *pattern, ngx_str_t *path, ngx_str_t *id,
    ngx_str_t *id2)
{
    u_char    *p, *q, *pe, *qe, *seg;
    ngx_str_t *capture;

    p = pattern->data;
    pe = p + pattern->len;
    q = path->data;
    qe = q + path->len;
    capture = id;

    while (p < pe) {

        if (*p == '*') {
            seg = q;

            while (q < qe && *q != '/') {
                q++;
            }

            if (q == seg) {
                return 0;
            }

            capture->data = seg;
            capture->len = q - seg;
            capture = id2;
            p++;
            continue;
        }

        if (q == qe || *p != *q) {
            return 0;
        }

        p++;
        q++;
    }

    return q == qe;
}


static void
ngx_http_telehealth_body_handler(ngx_http_request_t *r)
{
    u_char                            *id;
    ngx_http_telehealth_ctx_t         *ctx;
    const ngx_http_telehealth_route_t *route;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    route = ctx->data;
    ctx->data = NULL;

    if (route->handler != ngx_http_telehealth_chat_upload
        && ngx_http_telehealth_read_body(r, ctx) != NGX_OK)
    {
        return;
    }

    if (ctx->id.len) {
        id = ngx_pnalloc(r->pool, ctx->id.len + 1);
        if (id == NULL) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_cpystrn(id, ctx->id.data, ctx->id.len + 1);
        ctx->id.data = id;
    }

    if (ctx->id2.len) {
        id = ngx_pnalloc(r->pool, ctx->id2.len + 1);
        if (id == NULL) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_cpystrn(id, ctx->id2.data, ctx->id2.len + 1);
        ctx->id2.data = id;
    }

    ctx->op = route->op;
    ctx->then = route->then;
    ctx->guests = (route->auth == 2);

    /* notice a client that gives up while PostgreSQL or Redis works */
    r->read_event_handler = ngx_http_test_reading;

    if (route->auth) {
        ngx_http_telehealth_authenticate(r, route->handler);
        return;
    }

    route->handler(r);
}


/* NGX_OK, or NGX_DONE when the request has been answered and ended */

static ngx_int_t
ngx_http_telehealth_read_body(ngx_http_request_t *r,
    ngx_http_telehealth_ctx_t                    *ctx)
{
    u_char      *data, *p;
    size_t       len, size;
    json_t      *json;
    ssize_t      n;
    ngx_buf_t   *b;
    ngx_chain_t *cl;
    json_error_t err;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    if (len > ctx->mcf->max_body_size) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_PAYLOAD_TOO_LARGE,
            NULL);
        return NGX_DONE;
    }

    if (len == 0) {
        return NGX_OK;
    }

    data = ngx_pnalloc(r->pool, len);
    if (data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    p = data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        /* a body larger than client_body_buffer_size: a small temp file */
        size = (size_t) (b->file_last - b->file_pos);
        n = ngx_read_file(b->file, p, size, b->file_pos);

        if (n != (ssize_t) size) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_DONE;
        }

        p += size;
    }

    json = json_loadb((char *) data, len, JSON_REJECT_DUPLICATES, &err);

    if (json == NULL) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
            "The request body is not valid JSON.");
        return NGX_DONE;
    }

    if (ngx_http_telehealth_json_track(r->pool, json) == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    if (!json_is_object(json)) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
            "The request body must be a JSON object.");
        return NGX_DONE;
    }

    ctx->body = json;

    return NGX_OK;
}


ngx_uint_t
ngx_http_telehealth_routes_count(void)
{
    return sizeof(ngx_http_telehealth_routes)
               / sizeof(ngx_http_telehealth_route_t)
           - 1;
}


void
ngx_http_telehealth_route_name(ngx_uint_t i, ngx_uint_t *method,
    ngx_str_t **path)
{
    *method = ngx_http_telehealth_routes[i].method;
    *path = (ngx_str_t *) &ngx_http_telehealth_routes[i].path;
}


ngx_int_t
ngx_http_telehealth_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    return ngx_http_telehealth_send_typed(r, status, json, 0);
}


static ngx_int_t
ngx_http_telehealth_send_typed(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json, ngx_uint_t problem)
{
    char     *text;
    ngx_int_t rc;

    if (json == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
            "telehealth: cannot build a JSON answer");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text = json_dumps(json, JSON_COMPACT);
    json_decref(json);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_telehealth_send_text(r, status, (u_char *) text,
        ngx_strlen(text), problem);
    free(text);

    return rc;
}


/* JSON as PostgreSQL wrote it (jsonb's text), copied: no parse, no dump */

ngx_int_t
ngx_http_telehealth_send_json_text(ngx_http_request_t *r, ngx_uint_t status,
    u_char *text, size_t len)
{
    return ngx_http_telehealth_send_text(r, status, text, len, 0);
}


static ngx_int_t
ngx_http_telehealth_send_text(ngx_http_request_t *r, ngx_uint_t status,
    u_char *text, size_t len, ngx_uint_t problem)
{
    ngx_int_t   rc;
    ngx_buf_t  *b;
    ngx_chain_t out;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, text, len);

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    if (problem) {
        ngx_str_set(&r->headers_out.content_type, "application/problem+json");

    } else {
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    /* answers carry tokens and personal data: no cache may keep them */
    if (ngx_http_telehealth_add_header(r, "Cache-Control",
            (u_char *) "no-store", 8)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_telehealth_send_status(ngx_http_request_t *r, ngx_uint_t status)
{
    r->headers_out.status = status;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


ngx_int_t
ngx_http_telehealth_send_problem(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail)
{
    json_t                              *json;
    const ngx_http_telehealth_problem_t *p;

    p = &ngx_http_telehealth_problems[problem];

    if (problem == NGX_HTTP_TELEHEALTH_UNAUTHORIZED) {
        if (ngx_http_telehealth_add_header(r, "WWW-Authenticate",
                (u_char *) "Bearer error=\"invalid_token\"",
                sizeof("Bearer error=\"invalid_token\"") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (problem == NGX_HTTP_TELEHEALTH_UNAVAILABLE) {
        if (ngx_http_telehealth_add_header(r, "Retry-After",
                (u_char *) NGX_HTTP_TELEHEALTH_RETRY_AFTER,
                sizeof(NGX_HTTP_TELEHEALTH_RETRY_AFTER) - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    json = json_pack("{s:s%, s:s, s:i, s:s}", "type", (char *) p->type.data,
        p->type.len, "title", p->title, "status", (int) p->status, "detail",
        detail ? detail : p->detail);

    return ngx_http_telehealth_send_typed(r, p->status, json, 1);
}


ngx_int_t
ngx_http_telehealth_add_header(ngx_http_request_t *r, const char *key,
    u_char *value, size_t len)
{
    ngx_table_elt_t *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = value;
    h->value.len = len;
    h->lowcase_key = NULL;

    return NGX_OK;
}


void
ngx_http_telehealth_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t *c;

    c = r->connection;

    if (rc == NGX_HTTP_INTERNAL_SERVER_ERROR && !r->header_sent) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
            "telehealth: internal error answering the request");
        rc = ngx_http_telehealth_send_problem(r, NGX_HTTP_TELEHEALTH_INTERNAL,
            NULL);
    }

    ngx_http_telehealth_throttle_outcome(r);

    ngx_http_finalize_request(r, rc);

    /* called from PostgreSQL, Redis and thread events, not HTTP ones */
    ngx_http_run_posted_requests(c);
}


void
ngx_http_telehealth_fail(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail)
{
    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_problem(r, problem, detail));
}


ngx_uint_t
ngx_http_telehealth_problem_status(ngx_http_telehealth_problem_e problem)
{
    return ngx_http_telehealth_problems[problem].status;
}


void
ngx_http_telehealth_fail_pg(ngx_http_request_t *r,
    ngx_http_telehealth_pg_req_t               *req)
{
    if (req == NULL || req->status == NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INTERNAL, NULL);
}


ngx_http_telehealth_problem_e
ngx_http_telehealth_problem_named(const char *name)
{
    size_t     len, prefix;
    ngx_uint_t i;

    len = ngx_strlen(name);
    prefix = sizeof("urn:telehealth:problem:") - 1;

    for (i = 0; i <= NGX_HTTP_TELEHEALTH_INTERNAL; i++) {
        if (ngx_http_telehealth_problems[i].type.len == prefix + len
            && ngx_strncmp(ngx_http_telehealth_problems[i].type.data + prefix,
                   name, len)
                   == 0)
        {
            return i;
        }
    }

    return NGX_HTTP_TELEHEALTH_INTERNAL;
}


ngx_int_t
ngx_http_telehealth_set_location(ngx_http_request_t *r, u_char *path,
    size_t len)
{
    u_char                    *location, *p;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    location =
        ngx_pnalloc(r->pool, ctx->mcf->public_url.len + ctx->base.len + len);
    if (location == NULL) {
        return NGX_ERROR;
    }

    p = location;

    if (ctx->mcf->public_url.len) {
        p = ngx_cpymem(p, ctx->mcf->public_url.data, ctx->mcf->public_url.len);

        if (p[-1] == '/') {
            p--;
        }
    }

    p = ngx_cpymem(p, ctx->base.data, ctx->base.len);
    p = ngx_cpymem(p, path, len);

    return ngx_http_telehealth_add_header(r, "Location", location,
        p - location);
}


json_t *
ngx_http_telehealth_json_track(ngx_pool_t *pool, json_t *json)
{
    ngx_pool_cleanup_t *cln;

    if (json == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        json_decref(json);
        return NULL;
    }

    cln->handler = ngx_http_telehealth_json_cleanup;
    cln->data = json;

    return json;
}


static void
ngx_http_telehealth_json_cleanup(void *data)
{
    json_decref((json_t *) data);
}


char *
ngx_http_telehealth_client_addr(ngx_http_request_t *r)
{
    u_char    *p;
    ngx_str_t *addr;

    addr = &r->connection->addr_text;

    p = ngx_pnalloc(r->pool, addr->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, addr->data, addr->len);
    p[addr->len] = '\0';

    return (char *) p;
}
