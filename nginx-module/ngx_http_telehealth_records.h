/*
 * Routes answered by PostgreSQL: staff, patients, assignments, call
 * history and the audit log.  Each is one statement, th_api(op, request),
 * that checks access, does the work and writes the audit row in one
 * transaction (sql/functions/api.sql).
 */

#ifndef _NGX_HTTP_TELEHEALTH_RECORDS_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_RECORDS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"


void ngx_http_telehealth_records_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_TELEHEALTH_RECORDS_H_INCLUDED_ */
