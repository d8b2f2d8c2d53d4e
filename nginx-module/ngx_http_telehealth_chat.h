/*
 * Chat attachments: uploads that nginx streams to a file, typed by their
 * first bytes, moved into telehealth_chat_files under an id of ours,
 * optionally scanned by clamd; downloads answered by nginx itself from an
 * internal location once PostgreSQL allowed them.
 */

#ifndef _NGX_HTTP_TELEHEALTH_CHAT_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_CHAT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"


/* reads an upload's body into a file; handler runs once it is there */
ngx_int_t ngx_http_telehealth_chat_read(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt                         handler);

/* POST /sessions/{id}/files, after authentication */
void ngx_http_telehealth_chat_upload(ngx_http_request_t *r);

/* a download allowed by th_api(): nginx sends the file */
void ngx_http_telehealth_chat_send(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);

/*
 * Removes a stored attachment by its id (a uuid; anything else is
 * refused): what the purge does with each id th_chat_purge_session()
 * answers.  NGX_OK also when the file was gone already.
 */
ngx_int_t ngx_http_telehealth_chat_remove(ngx_http_telehealth_main_conf_t *mcf,
    const char *id, ngx_log_t *log);

/* telehealth_clamd unix:/path | address:port */
char *ngx_http_telehealth_clamd(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


#endif /* _NGX_HTTP_TELEHEALTH_CHAT_H_INCLUDED_ */
