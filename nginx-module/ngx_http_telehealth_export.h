/*
 * GET /sessions/{id}/export.pdf: a session's record as a PDF for its
 * chairs (docs/api.md, "Export").
 */

#ifndef _NGX_HTTP_TELEHEALTH_EXPORT_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_EXPORT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


void ngx_http_telehealth_export_pdf(ngx_http_request_t *r);


#endif /* _NGX_HTTP_TELEHEALTH_EXPORT_H_INCLUDED_ */
