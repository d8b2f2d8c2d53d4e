// The contract: docs/openapi.yaml describes every
// route the module serves, and nothing else.
//
// 1. The router and the document agree.  The route table is read from
//    nginx-module/ngx_http_telehealth_api.c (the array
//    ngx_http_telehealth_routes[]): every element with a path literal
//    ("/sessions/*/join") and its NGX_HTTP_<METHOD> flags (one or more,
//    e.g. NGX_HTTP_GET|NGX_HTTP_POST) is one or more (method, path) pairs.
//    A "*" segment is a path parameter: it matches any "{name}" segment of
//    the document (the router does not name its parameters).  A route
//    missing from either side fails, naming it.
//    HEAD rule: the router answers HEAD with the GET route of the path
//    (ngx_http_telehealth_route(): HEAD is matched as GET), so HEAD is
//    implied by GET and not listed in the document; a "head" operation in
//    the document is accepted only where a GET exists, and HEAD is
//    checked live below.
// 2. The document is structurally valid OpenAPI 3.1: it parses, every
//    $ref resolves, every operation has responses with descriptions,
//    operationIds are unique, path templates and path parameters match,
//    errors are application/problem+json of the Problem schema, and the
//    problem types equal the module's problem table (types and statuses).
// 3. Live: a handful of calls against the running API (TH_BASE) answer
//    with a documented status, content type, headers and the required
//    properties of the documented schema.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
    '..', '..');
const API_C = path.join(ROOT, 'nginx-module', 'ngx_http_telehealth_api.c');
const DOC = path.join(ROOT, 'docs', 'openapi.yaml');

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch',
    'trace'];

// Lists whose answer is not {items, next_cursor}: none.
const UNPAGINATED_LISTS = new Set([]);

// Properties named id / *_id that are not UUIDs: audit rows are numbered,
// target_id is the id as the request gave it, command ids are tokens.
const NON_UUID_IDS = new Set(['AuditRow.id', 'AuditRow.target_id',
    'RoomCommand.id', 'CommandAccepted.command_id']);

// ------------------------------------------------------------ C parsing

// Removes comments, keeps string and character literals intact (a "/*"
// inside a string is not a comment).
function stripComments(src) {
    let out = '';
    let i = 0;
    while (i < src.length) {
        const c = src[i];
        const n = src[i + 1];
        if (c === '"' || c === '\'') {
            let j = i + 1;
            while (j < src.length && src[j] !== c) {
                j += src[j] === '\\' ? 2 : 1;
            }
            out += src.slice(i, j + 1);
            i = j + 1;
        } else if (c === '/' && n === '*') {
            const j = src.indexOf('*/', i + 2);
            out += ' ';
            i = j < 0 ? src.length : j + 2;
        } else if (c === '/' && n === '/') {
            const j = src.indexOf('\n', i);
            i = j < 0 ? src.length : j;
        } else {
            out += c;
            i++;
        }
    }
    return out;
}

// The text between the braces of "<name>[] = { ... };" (nesting and
// literals respected).
function arrayBody(code, name) {
    const re = new RegExp(`\\b${name}\\s*\\[[^\\]]*\\]\\s*=\\s*\\{`);
    const m = re.exec(code);
    assert.ok(m, `cannot find the array ${name}[] in ${API_C}`);
    const start = m.index + m[0].length;
    let depth = 1;
    for (let i = start; i < code.length; i++) {
        const c = code[i];
        if (c === '"' || c === '\'') {
            let j = i + 1;
            while (j < code.length && code[j] !== c) {
                j += code[j] === '\\' ? 2 : 1;
            }
            i = j;
        } else if (c === '{') {
            depth++;
        } else if (c === '}' && --depth === 0) {
            return code.slice(start, i);
        }
    }
    assert.fail(`the array ${name}[] in ${API_C} is not closed`);
}

// Splits an initializer list at its top-level commas.
function elements(body) {
    const out = [];
    let depth = 0;
    let cur = '';
    for (let i = 0; i < body.length; i++) {
        const c = body[i];
        if (c === '"' || c === '\'') {
            let j = i + 1;
            while (j < body.length && body[j] !== c) {
                j += body[j] === '\\' ? 2 : 1;
            }
            cur += body.slice(i, j + 1);
            i = j;
            continue;
        }
        if (c === '(' || c === '{' || c === '[') {
            depth++;
        } else if (c === ')' || c === '}' || c === ']') {
            depth--;
        }
        if (c === ',' && depth === 0) {
            out.push(cur.trim());
            cur = '';
        } else {
            cur += c;
        }
    }
    if (cur.trim()) {
        out.push(cur.trim());
    }
    return out.filter((e) => e.length > 0);
}

// The string literals of an element, adjacent ones concatenated as C does.
function literals(text) {
    const out = [];
    const re = /((?:"(?:[^"\\]|\\.)*"\s*)+)/g;
    let m;
    while ((m = re.exec(text)) !== null) {
        out.push([...m[1].matchAll(/"((?:[^"\\]|\\.)*)"/g)]
            .map((x) => x[1]).join(''));
    }
    return out;
}

// [{method: 'GET', path: '/sessions/*', line}] from the route table.
export function parseRoutes(src) {
    const code = stripComments(src);
    const body = arrayBody(code, 'ngx_http_telehealth_routes');
    const routes = [];
    for (const el of elements(body)) {
        const flat = el.replace(/\s+/g, ' ');
        if (/ngx_null_string|^\{\s*(NULL|0)\s*(,|\})/.test(flat)) {
            continue; // the terminator
        }
        const paths = literals(el).filter((s) => s.startsWith('/'));
        assert.equal(paths.length, 1,
            `route table element without exactly one path literal: ${flat}`);
        const methods = [...el.matchAll(
            /\bNGX_HTTP_(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE)\b/g)]
            .map((x) => x[1]);
        assert.ok(methods.length > 0,
            `route table element without a NGX_HTTP_<METHOD>: ${flat}`);
        for (const method of new Set(methods)) {
            routes.push({ method, path: paths[0], source: flat });
        }
    }
    assert.ok(routes.length > 0,
        `no route parsed from ngx_http_telehealth_routes[] in ${API_C}`);
    return routes;
}

const NGX_STATUS = {
    NGX_HTTP_BAD_REQUEST: 400, NGX_HTTP_UNAUTHORIZED: 401,
    NGX_HTTP_FORBIDDEN: 403, NGX_HTTP_NOT_FOUND: 404,
    NGX_HTTP_NOT_ALLOWED: 405, NGX_HTTP_REQUEST_TIME_OUT: 408,
    NGX_HTTP_CONFLICT: 409, NGX_HTTP_LENGTH_REQUIRED: 411,
    NGX_HTTP_PRECONDITION_FAILED: 412,
    NGX_HTTP_REQUEST_ENTITY_TOO_LARGE: 413,
    NGX_HTTP_UNSUPPORTED_MEDIA_TYPE: 415, NGX_HTTP_TOO_MANY_REQUESTS: 429,
    NGX_HTTP_INTERNAL_SERVER_ERROR: 500, NGX_HTTP_NOT_IMPLEMENTED: 501,
    NGX_HTTP_BAD_GATEWAY: 502, NGX_HTTP_SERVICE_UNAVAILABLE: 503,
    NGX_HTTP_GATEWAY_TIME_OUT: 504,
};

// Map of problem type URN -> status from ngx_http_telehealth_problems[].
export function parseProblems(src) {
    const body = arrayBody(stripComments(src), 'ngx_http_telehealth_problems');
    const out = new Map();
    for (const el of elements(body)) {
        const type = literals(el).find((s) => s.startsWith('urn:'));
        assert.ok(type, `problem table element without a type: ${el}`);
        const last = el.replace(/[{}\s]+$/g, '').split(',').pop().trim()
            .replace(/^\{/, '');
        const status = /^\d+$/.test(last) ? Number(last) : NGX_STATUS[last];
        assert.ok(status, `problem ${type}: unknown status "${last}"`);
        out.set(type, status);
    }
    assert.ok(out.size > 0, 'no problem type parsed from the module');
    return out;
}

// --------------------------------------------------------- the document

const doc = YAML.parse(fs.readFileSync(DOC, 'utf8'));
const apiSrc = fs.readFileSync(API_C, 'utf8');

function pointer(ref) {
    assert.ok(typeof ref === 'string' && ref.startsWith('#/'),
        `only local $ref are used: ${ref}`);
    let node = doc;
    for (const raw of ref.slice(2).split('/')) {
        const key = decodeURIComponent(raw).replace(/~1/g, '/')
            .replace(/~0/g, '~');
        if (node === null || typeof node !== 'object' || !(key in node)) {
            return undefined;
        }
        node = node[key];
    }
    return node;
}

// Follows $ref until a node without one.
function deref(node) {
    const seen = new Set();
    while (node && typeof node === 'object' && typeof node.$ref === 'string') {
        assert.ok(!seen.has(node.$ref), `$ref cycle at ${node.$ref}`);
        seen.add(node.$ref);
        const next = pointer(node.$ref);
        assert.ok(next !== undefined, `unresolved $ref ${node.$ref}`);
        node = next;
    }
    return node;
}

const normalise = (p) => p.replace(/\{[^}/]+\}/g, '*');
const display = (p) => {
    let n = 0;
    return p.replace(/\*/g, () => (n++ === 0 ? '{id}' : '{id2}'));
};

function operations() {
    const out = [];
    for (const [p, item] of Object.entries(doc.paths || {})) {
        for (const m of METHODS) {
            if (item[m]) {
                out.push({ method: m.toUpperCase(), path: p, item, op: item[m] });
            }
        }
    }
    return out;
}

function findOperation(method, template) {
    const item = doc.paths[template];
    assert.ok(item, `docs/openapi.yaml has no path ${template}`);
    const op = item[method.toLowerCase()];
    assert.ok(op, `docs/openapi.yaml has no ${method} ${template}`);
    return op;
}

// ------------------------------------------------- a small JSON Schema check

const FORMATS = {
    uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
    'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/,
};

function typeOf(v) {
    if (v === null) {
        return 'null';
    }
    if (Array.isArray(v)) {
        return 'array';
    }
    if (typeof v === 'number') {
        return Number.isInteger(v) ? 'integer' : 'number';
    }
    return typeof v;
}

// Errors of value against the schema subset the document uses (type,
// enum, const, required, properties, items, allOf, oneOf, anyOf, format
// uuid/date-time, pattern).  Returns a list of messages.
export function validate(schema, value, where = '$') {
    const s = deref(schema);
    if (s === true || s === undefined || s === null) {
        return [];
    }
    const errs = [];
    for (const sub of s.allOf || []) {
        errs.push(...validate(sub, value, where));
    }
    for (const key of ['oneOf', 'anyOf']) {
        if (s[key]) {
            const ok = s[key].some((sub) => validate(sub, value, where)
                .length === 0);
            if (!ok) {
                errs.push(`${where}: matches none of ${key}`);
            }
        }
    }
    if (s.type !== undefined) {
        const types = Array.isArray(s.type) ? s.type : [s.type];
        const t = typeOf(value);
        if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) {
            errs.push(`${where}: ${JSON.stringify(value)} is ${t}, ` +
                `not ${types.join('|')}`);
            return errs;
        }
    }
    if (s.enum && !s.enum.some((e) => e === value)) {
        errs.push(`${where}: ${JSON.stringify(value)} not in enum`);
    }
    if ('const' in s && s.const !== value) {
        errs.push(`${where}: ${JSON.stringify(value)} is not ${s.const}`);
    }
    if (typeof value === 'string') {
        if (s.format && FORMATS[s.format] && !FORMATS[s.format].test(value)) {
            errs.push(`${where}: "${value}" is not a ${s.format}`);
        }
        if (s.pattern && !new RegExp(s.pattern, 'u').test(value)) {
            errs.push(`${where}: "${value}" does not match ${s.pattern}`);
        }
    }
    if (typeOf(value) === 'object') {
        for (const r of s.required || []) {
            if (!(r in value)) {
                errs.push(`${where}: required property "${r}" is missing`);
            }
        }
        for (const [k, sub] of Object.entries(s.properties || {})) {
            if (k in value) {
                errs.push(...validate(sub, value[k], `${where}.${k}`));
            }
        }
    }
    if (Array.isArray(value) && s.items) {
        value.forEach((v, i) => errs.push(...validate(s.items, v,
            `${where}[${i}]`)));
    }
    return errs;
}

// ------------------------------------------------------- router vs document

describe('docs/openapi.yaml and the router', () => {
    const routes = parseRoutes(apiSrc);

    test('the route table parses', () => {
        // a sanity floor: the table had 26 routes when this test was
        // written; fewer than a handful means the parser went wrong
        assert.ok(routes.length >= 10,
            `only ${routes.length} routes parsed from ${API_C}`);
        for (const r of routes) {
            assert.match(r.path, /^\/[A-Za-z0-9_.\-/*]*$/,
                `odd route path ${r.path}`);
        }
    });

    test('every route is documented and every documented path is served',
        () => {
            const served = new Map();
            for (const r of routes) {
                served.set(`${r.method} ${r.path}`, r);
            }
            const documented = new Map();
            for (const o of operations()) {
                documented.set(`${o.method} ${normalise(o.path)}`, o);
            }

            const problems = [];
            for (const [key, r] of served) {
                if (!documented.has(key)) {
                    problems.push(`route ${r.method} ${display(r.path)} is ` +
                        'served by the router but missing from ' +
                        'docs/openapi.yaml');
                }
            }
            for (const [key, o] of documented) {
                if (served.has(key)) {
                    continue;
                }
                // HEAD is implied by GET (see the top of this file)
                if (o.method === 'HEAD'
                    && served.has(`GET ${normalise(o.path)}`)) {
                    continue;
                }
                problems.push(`${o.method} ${o.path} is in docs/openapi.yaml ` +
                    'but the router does not serve it');
            }
            assert.deepEqual(problems, [], problems.join('\n'));
        });

    test('no two document paths are the same route', () => {
        const seen = new Map();
        for (const p of Object.keys(doc.paths)) {
            const n = normalise(p);
            assert.ok(!seen.has(n),
                `${p} and ${seen.get(n)} are the same route`);
            seen.set(n, p);
        }
    });

    test('the problem types are the module\'s, with their statuses', () => {
        const module = parseProblems(apiSrc);
        const enumTypes = deref(doc.components.schemas.ProblemType).enum;
        assert.deepEqual([...enumTypes].sort(), [...module.keys()].sort(),
            'components.schemas.ProblemType.enum vs the module\'s table');
        const examples = Object.values(doc.components.examples || {})
            .map((e) => deref(e).value)
            .filter((v) => v && typeof v.type === 'string'
                && v.type.startsWith('urn:telehealth:problem:'));
        for (const [type, status] of module) {
            const ex = examples.filter((v) => v.type === type);
            assert.ok(ex.length > 0,
                `components.examples has no example of ${type}`);
            for (const v of ex) {
                assert.equal(v.status, status, `status of ${type}`);
                assert.deepEqual(validate(
                    { $ref: '#/components/schemas/Problem' }, v), [],
                `example of ${type}`);
            }
        }
    });
});

// ------------------------------------------------------- structural checks

describe('docs/openapi.yaml is valid OpenAPI 3.1', () => {
    test('header: openapi, info, servers, security', () => {
        assert.match(String(doc.openapi), /^3\.1\.\d+$/);
        assert.equal(typeof doc.info?.title, 'string');
        assert.equal(typeof doc.info?.version, 'string');
        assert.ok(Array.isArray(doc.servers) && doc.servers.length > 0);
        assert.ok(doc.servers.some((s) => s.url === '/api/v1'),
            'a server with the relative url /api/v1');
        const schemes = doc.components?.securitySchemes || {};
        const reqs = [...(doc.security || [])];
        for (const o of operations()) {
            reqs.push(...(o.op.security || []));
        }
        for (const req of reqs) {
            for (const name of Object.keys(req)) {
                assert.ok(schemes[name],
                    `security scheme ${name} is not in components`);
            }
        }
        assert.equal(schemes.bearerAuth?.scheme, 'bearer');
        assert.equal(schemes.bearerAuth?.bearerFormat, 'JWT');
    });

    test('every $ref resolves', () => {
        const bad = [];
        const walk = (node, where) => {
            if (Array.isArray(node)) {
                node.forEach((v, i) => walk(v, `${where}/${i}`));
            } else if (node && typeof node === 'object') {
                if ('$ref' in node) {
                    if (typeof node.$ref !== 'string'
                        || !node.$ref.startsWith('#/')
                        || pointer(node.$ref) === undefined) {
                        bad.push(`${where}: ${node.$ref}`);
                    }
                }
                for (const [k, v] of Object.entries(node)) {
                    walk(v, `${where}/${k}`);
                }
            }
        };
        walk(doc, '#');
        assert.deepEqual(bad, [], `unresolved $ref:\n${bad.join('\n')}`);
    });

    test('operations: unique operationIds, responses, path parameters', () => {
        const ids = new Map();
        const problems = [];
        for (const { method, path: p, item, op } of operations()) {
            const name = `${method} ${p}`;
            if (typeof op.operationId !== 'string' || !op.operationId) {
                problems.push(`${name}: no operationId`);
            } else if (ids.has(op.operationId)) {
                problems.push(`${name}: operationId ${op.operationId} is ` +
                    `also used by ${ids.get(op.operationId)}`);
            } else {
                ids.set(op.operationId, name);
            }

            const responses = op.responses || {};
            if (Object.keys(responses).length === 0) {
                problems.push(`${name}: no responses`);
            }
            if (!Object.keys(responses).some((c) => /^[23]/.test(c))) {
                problems.push(`${name}: no success response`);
            }
            for (const [code, r] of Object.entries(responses)) {
                if (!/^([1-5](\d\d|XX)|default)$/.test(code)) {
                    problems.push(`${name}: bad response key ${code}`);
                    continue;
                }
                const res = deref(r);
                if (typeof res?.description !== 'string') {
                    problems.push(`${name} ${code}: no description`);
                }
                for (const [type, media] of Object.entries(res.content || {})) {
                    if (!media.schema) {
                        problems.push(`${name} ${code} ${type}: no schema`);
                    }
                }
                const isError = /^[45]/.test(code)
                    && !(name === 'GET /health' && code === '503');
                if (isError) {
                    const types = Object.keys(res.content || {});
                    const schema = res.content?.['application/problem+json']
                        ?.schema;
                    if (types.length !== 1 || !schema
                        || schema.$ref !== '#/components/schemas/Problem') {
                        problems.push(`${name} ${code}: not ` +
                            'application/problem+json of Problem');
                    }
                }
            }

            // path template names == declared path parameters
            const params = [...(item.parameters || []),
                ...(op.parameters || [])].map(deref);
            for (const prm of params) {
                if (!prm || !prm.name || !prm.in) {
                    problems.push(`${name}: a parameter without name/in`);
                }
            }
            const inPath = params.filter((x) => x.in === 'path');
            const names = [...p.matchAll(/\{([^}]+)\}/g)].map((x) => x[1]);
            for (const n of names) {
                const prm = inPath.find((x) => x.name === n);
                if (!prm) {
                    problems.push(`${name}: no path parameter ${n}`);
                } else if (prm.required !== true) {
                    problems.push(`${name}: path parameter ${n} not required`);
                }
            }
            for (const prm of inPath) {
                if (!names.includes(prm.name)) {
                    problems.push(`${name}: path parameter ${prm.name} is ` +
                        'not in the template');
                }
            }
            for (const list of [item.parameters || [], op.parameters || []]) {
                const keys = list.map(deref).map((x) => `${x.in}:${x.name}`);
                if (new Set(keys).size !== keys.length) {
                    problems.push(`${name}: a parameter is listed twice`);
                }
            }

            if (op.requestBody) {
                const rb = deref(op.requestBody);
                // a file upload's body is the file (binary), not JSON
                const binary = Object.values(rb.content || {})
                    .some((c) => c.schema?.format === 'binary');
                if (!binary && !rb.content?.['application/json']?.schema) {
                    problems.push(`${name}: request body without a JSON ` +
                        'schema');
                }
                for (const c of ['400', '413']) {
                    if (!op.responses[c]) {
                        problems.push(`${name}: takes a body but has no ${c}`);
                    }
                }
            }
            if (!op.responses['500']) {
                problems.push(`${name}: no 500`);
            }
            const secured = (op.security ?? doc.security ?? []).length > 0;
            if (secured && !op.responses['401']) {
                problems.push(`${name}: authenticated but no 401`);
            }
        }
        assert.ok(ids.size > 0, 'no operation in docs/openapi.yaml');
        assert.deepEqual(problems, [], problems.join('\n'));
    });

    test('conventions: lists, timestamps, ids', () => {
        const problems = [];
        for (const { method, path: p, op } of operations()) {
            const name = `${method} ${normalise(p)}`;
            const ok = op.responses?.['200'] && deref(op.responses['200']);
            const schema = ok?.content?.['application/json']?.schema
                && deref(ok.content['application/json'].schema);
            if (method !== 'GET' || !schema?.properties?.items) {
                continue;
            }
            if (UNPAGINATED_LISTS.has(name)) {
                continue;
            }
            if (!schema.required?.includes('next_cursor')) {
                problems.push(`${method} ${p}: a list without next_cursor`);
            }
            const q = (op.parameters || []).map(deref)
                .filter((x) => x.in === 'query').map((x) => x.name);
            for (const n of ['limit', 'cursor']) {
                if (!q.includes(n)) {
                    problems.push(`${method} ${p}: a list without ?${n}`);
                }
            }
        }
        // every *_at property is a date-time; id / *_id a uuid (or null)
        const formatOf = (s) => {
            const d = deref(s);
            if (d?.format) {
                return d.format;
            }
            for (const k of ['oneOf', 'anyOf', 'allOf']) {
                for (const sub of d?.[k] || []) {
                    const f = formatOf(sub);
                    if (f) {
                        return f;
                    }
                }
            }
            return undefined;
        };
        for (const [sn, s] of Object.entries(doc.components.schemas)) {
            for (const [pn, ps] of Object.entries(s.properties || {})) {
                if (/_at$/.test(pn) && formatOf(ps) !== 'date-time') {
                    problems.push(`${sn}.${pn} is not a date-time`);
                }
                if (/(^|_)id$/.test(pn) && !NON_UUID_IDS.has(`${sn}.${pn}`)
                    && formatOf(ps) !== 'uuid') {
                    problems.push(`${sn}.${pn} is not a uuid`);
                }
            }
        }
        assert.deepEqual(problems, [], problems.join('\n'));
    });
});

// ------------------------------------------------------------- live checks

// Asserts that a live answer is the one expected and one the document
// describes for method + template: exactly the status `status`, for an
// error exactly the problem type urn:telehealth:problem:<type> (a
// documented but other status, say a second POST /sessions answering 201,
// fails), and then the documented content type, headers and a body valid
// against its schema (required properties present).
function conforms(res, method, template, what, status, type) {
    const op = findOperation(method, template);
    const ctx = `${method} ${template}${what ? ` (${what})` : ''} -> ` +
        `${res.status} ${res.text.slice(0, 300)}`;
    assert.equal(typeof status, 'number', `no expected status: ${ctx}`);
    assert.equal(res.status, status, `status: ${ctx}`);
    if (status >= 400) {
        assert.ok(type, `no expected problem type: ${ctx}`);
        assert.equal(res.body?.type, `urn:telehealth:problem:${type}`,
            `problem type: ${ctx}`);
    } else {
        assert.equal(type, undefined, `a problem type for a success: ${ctx}`);
    }
    const code = String(res.status);
    const key = [code, `${code[0]}XX`, 'default']
        .find((k) => op.responses[k]);
    assert.ok(key, `status ${res.status} is not documented: ${ctx}`);
    const r = deref(op.responses[key]);
    for (const h of Object.keys(r.headers || {})) {
        assert.ok(res.headers.get(h) !== null,
            `documented header ${h} missing: ${ctx}`);
    }
    const types = Object.keys(r.content || {});
    if (types.length === 0) {
        assert.equal(res.text, '', `no body documented: ${ctx}`);
        return;
    }
    const ct = (res.headers.get('content-type') || '').split(';')[0].trim();
    assert.ok(types.includes(ct),
        `content type "${ct}" is not one of ${types.join(', ')}: ${ctx}`);
    assert.ok(res.body !== null, `no JSON body: ${ctx}`);
    const errs = validate(r.content[ct].schema, res.body);
    assert.deepEqual(errs, [], `${ctx}\n${errs.join('\n')}`);
    if (ct === 'application/problem+json') {
        assert.equal(res.body.status, res.status, `problem status: ${ctx}`);
    }
}

describe('live answers match docs/openapi.yaml', () => {
    let lib;
    let w;
    let patient;
    let session;
    const conns = [];

    before(async () => {
        lib = await import('./lib.mjs');
        w = await lib.createWorld('openapi');
        await lib.loginAll([w.admin, w.clinician, w.patient]);
        patient = await lib.addPatient(w, 'live');
    });

    after(async () => {
        for (const c of conns) {
            await lib.leaveRoom(c).catch(() => {});
            await c.session.destroy().catch(() => {});
        }
        await lib?.closeDb();
    });

    test('health, login, me, logout; HEAD is GET without a body', async () => {
        const { api, env } = lib;
        conforms(await api('GET', '/health'), 'GET', '/health', '', 200);

        const head = await fetch(`${env.api}/health`, { method: 'HEAD' });
        assert.equal(head.status, 200, 'HEAD /health');
        assert.equal(await head.text(), '', 'HEAD has no body');

        const login = await api('POST', '/auth/login', {
            body: { email: w.admin.email, password: env.password },
        });
        conforms(login, 'POST', '/auth/login', '', 200);
        conforms(await api('POST', '/auth/login', {
            body: { email: w.admin.email, password: 'not-the-password' },
        }), 'POST', '/auth/login', 'wrong password', 401,
        'invalid-credentials');
        conforms(await api('POST', '/auth/login', { body: {} }),
            'POST', '/auth/login', 'no fields', 400, 'invalid-request');

        conforms(await api('GET', '/me', { token: w.admin.token }),
            'GET', '/me', '', 200);
        conforms(await api('GET', '/me', { token: w.patient.token }),
            'GET', '/me', 'patient', 200);
        conforms(await api('GET', '/me'), 'GET', '/me', 'no token', 401,
            'unauthorized');

        const token = login.body.access_token;
        conforms(await api('POST', '/auth/logout', { token }),
            'POST', '/auth/logout', '', 204);
        conforms(await api('GET', '/me', { token }), 'GET', '/me', 'revoked',
            401, 'unauthorized');
    });

    test('a method the route does not serve: 405 with Allow', async () => {
        const res = await lib.api('PUT', '/staff', { token: w.admin.token });
        assert.equal(res.status, 405);
        const r = deref(doc.components.responses.MethodNotAllowed);
        for (const h of Object.keys(r.headers)) {
            assert.ok(res.headers.get(h), `header ${h}`);
        }
        assert.match(res.headers.get('allow'), /GET, HEAD/);
        assert.deepEqual(validate(
            r.content['application/problem+json'].schema, res.body), []);
    });

    test('staff and patients', async () => {
        const { api } = lib;
        const t = w.admin.token;
        conforms(await api('GET', '/staff?limit=2', { token: t }),
            'GET', '/staff', '', 200);
        conforms(await api('GET', '/staff?limit=0', { token: t }),
            'GET', '/staff', 'bad limit', 422, 'validation');
        conforms(await api('GET', `/staff/${w.clinician.id}`, { token: t }),
            'GET', '/staff/{id}', '', 200);
        conforms(await api('GET', `/staff/${crypto.randomUUID()}`,
            { token: t }), 'GET', '/staff/{id}', 'unknown id', 404, 'not-found');
        conforms(await api('GET', '/staff', { token: w.patient.token }),
            'GET', '/staff', 'patient', 403, 'forbidden');

        const created = await api('POST', '/patients', {
            token: t,
            body: { display_name: 'OpenAPI Patient', mobile: '+4915112345678',
                sms_capable: true, language: 'pt-BR' },
        });
        conforms(created, 'POST', '/patients', '', 201);
        const id = created.body.id;
        conforms(await api('GET', `/patients/${id}`, { token: t }),
            'GET', '/patients/{id}', '', 200);
        conforms(await api('PATCH', `/patients/${id}`, {
            token: t, headers: { 'if-match': '"999"' },
            body: { language: 'en' },
        }), 'PATCH', '/patients/{id}', 'stale If-Match', 412,
        'precondition-failed');
        conforms(await api('PATCH', `/patients/${id}`, {
            token: t, headers: { 'if-match': created.headers.get('etag') },
            body: { whatsapp: null },
        }), 'PATCH', '/patients/{id}', '', 200);
        conforms(await api('GET', '/patients?limit=1', { token: t }),
            'GET', '/patients', '', 200);
        conforms(await api('GET', `/patients/${id}`,
            { token: w.clinician.token }),
        'GET', '/patients/{id}', 'unassigned clinician', 403, 'forbidden');

        conforms(await api('POST', `/patients/${id}/assignments`, {
            token: t, body: { staff_id: w.clinician.id },
        }), 'POST', '/patients/{id}/assignments', '', 201);
        conforms(await api('GET', `/patients/${id}/assignments`,
            { token: t }), 'GET', '/patients/{id}/assignments', '', 200);
        conforms(await api('DELETE',
            `/patients/${id}/assignments/${w.clinician.id}`, { token: t }),
        'DELETE', '/patients/{id}/assignments/{staff_id}', '', 200);
    });

    test('sessions, join, room commands, calls, audit', async () => {
        const { api } = lib;
        const t = w.clinician.token;
        const created = await lib.startSession(t, patient.id);
        conforms(created, 'POST', '/sessions', '', 201);
        session = created.body;
        conforms(await lib.startSession(t, patient.id), 'POST', '/sessions',
            'patient in session', 409, 'patient-in-session');
        conforms(await api('POST', '/sessions', { token: t,
            body: { kind: 'no_such_kind', patient_id: patient.id } }),
        'POST', '/sessions', 'unknown kind', 422, 'validation');

        conforms(await api('GET', '/sessions', { token: t }),
            'GET', '/sessions', '', 200);
        conforms(await api('GET', `/sessions/${session.id}`, { token: t }),
            'GET', '/sessions/{id}', '', 200);
        conforms(await api('POST', `/sessions/${session.id}/close`,
            { token: t }), 'POST', '/sessions/{id}/close', 'nobody joined', 409,
        'room-not-open');

        conns.push(await lib.joinAs(t, session.id));
        conforms(await api('POST',
            `/sessions/${session.id}/participants/patient:${patient.id}/mute`,
            { token: t, body: { audio: true } }),
        'POST', '/sessions/{id}/participants/{pid}/mute', '', 202);
        conforms(await api('POST',
            `/sessions/${session.id}/participants/patient:${patient.id}/role`,
            { token: t, body: { role: 'nobody' } }),
        'POST', '/sessions/{id}/participants/{pid}/role', 'bad role', 422,
        'validation');
        conforms(await api('POST', `/sessions/${session.id}/join`,
            { token: w.admin.token }),
        'POST', '/sessions/{id}/join', 'not on the session', 404,
        'not-found');

        conforms(await api('GET', `/patients/${patient.id}/calls`,
            { token: t }), 'GET', '/patients/{id}/calls', '', 200);
        conforms(await api('GET', '/audit?limit=5', { token: w.admin.token }),
            'GET', '/audit', '', 200);
        conforms(await api('GET', '/audit', { token: t }),
            'GET', '/audit', 'clinician', 403, 'forbidden');
    });
});
