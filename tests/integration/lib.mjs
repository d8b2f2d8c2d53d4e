// Shared helpers of the integration tests: the REST API, PostgreSQL
// fixtures, Redis, tokens minted by the test, and a small client of the
// Janus HTTP API.  Every test file builds its own organisations with
// unique e-mails, so files never see each other's data.
//
// Environment (set by scripts/test.sh):
//   TH_BASE        nginx, e.g. http://127.0.0.1:58080 (API under /api/v1)
//   TH_JANUS_HTTP  Janus HTTP transport, e.g. http://127.0.0.1:58088/janus
//   TH_PG          postgres://postgres@127.0.0.1:55432/telehealth
//   TH_REDIS_PORT  Redis on 127.0.0.1
//   TH_KEYS        folder with k1.key (signs) and k2.key, the access-token
//                  secrets, and j1.pem, j2.pem (.pub) the join keys
//   TH_STACK       scripts/stack.sh
//   TH_ROOT        the repository
//   TH_TEST_PASSWORD, TH_TEST_PASSWORD_HASH (argon2id of the password)

import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const execFileP = promisify(execFile);

function need(name) {
    const v = process.env[name];
    if (!v) {
        throw new Error(`${name} is not set: run the tests with ` +
            'scripts/test.sh integration');
    }
    return v;
}

export const env = {
    base: need('TH_BASE'),
    api: need('TH_BASE') + '/api/v1',
    janus: need('TH_JANUS_HTTP'),
    pg: need('TH_PG'),
    redisPort: need('TH_REDIS_PORT'),
    keys: need('TH_KEYS'),
    stack: need('TH_STACK'),
    root: need('TH_ROOT'),
    run: need('TH_RUN'),
    password: need('TH_TEST_PASSWORD'),
    passwordHash: need('TH_TEST_PASSWORD_HASH'),
};

export const PROBLEM = 'urn:telehealth:problem:';
export const UUID_RE =
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const IN_SESSION_DETAIL =
    'The participant is already in a video session.';
export const PLUGIN = 'janus.plugin.telehealth';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- HTTP

// One API call.  Returns {status, headers, text, body, ms}; body is the
// parsed JSON when the answer is JSON, else null.  Never throws on an HTTP
// status; throws on a network error or when timeoutMs passes.
export async function api(method, route, opts = {}) {
    const headers = { ...(opts.headers || {}) };
    if (opts.token) {
        headers.authorization = `Bearer ${opts.token}`;
    }
    let body;
    if (opts.raw !== undefined) {
        body = opts.raw;
    } else if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
    }
    const url = route.startsWith('http') ? route : env.api + route;
    const t0 = performance.now();
    const res = await fetch(url, {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 15000),
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    let json = null;
    const ct = res.headers.get('content-type') || '';
    if (/json/.test(ct) && text.length > 0) {
        try {
            json = JSON.parse(text);
        } catch {
            json = null;
        }
    }
    return { status: res.status, headers: res.headers, text, body: json, ms };
}

// Asserts an RFC 9457 answer with the contract's type and status.
export function assertProblem(res, status, type, what = '') {
    const ctx = `${what} -> ${res.status} ${res.text.slice(0, 300)}`;
    assert.equal(res.status, status, `status ${ctx}`);
    const ct = res.headers.get('content-type') || '';
    assert.match(ct, /^application\/problem\+json\b/,
        `Content-Type "${ct}" ${ctx}`);
    assert.ok(res.body && typeof res.body === 'object', `JSON body ${ctx}`);
    assert.equal(res.body.type, PROBLEM + type, `type ${ctx}`);
    assert.equal(res.body.status, status, `"status" member ${ctx}`);
    assert.equal(typeof res.body.title, 'string', `"title" member ${ctx}`);
    assert.equal(typeof res.body.detail, 'string', `"detail" member ${ctx}`);
}

export function assertStatus(res, status, what = '') {
    assert.equal(res.status, status,
        `${what} -> ${res.status} ${res.text.slice(0, 300)}`);
}

export async function login(person) {
    const res = await api('POST', '/auth/login', {
        body: { email: person.email, password: env.password },
    });
    assertStatus(res, 200, `login ${person.email}`);
    assert.equal(typeof res.body.access_token, 'string');
    return res.body.access_token;
}

// Logs in every person given (once each) and stores the token on it.
export async function loginAll(people) {
    for (const p of people) {
        if (p.login && !p.token) {
            p.token = await login(p);
        }
    }
}

export function startSession(token, patientId, kind = 'video_call') {
    return api('POST', '/sessions', {
        token, body: { kind, patient_id: patientId },
    });
}

export function joinCredential(token, sessionId) {
    return api('POST', `/sessions/${sessionId}/join`, { token });
}

// --------------------------------------------------------------- tokens

export function b64url(buf) {
    return Buffer.from(buf).toString('base64url');
}

export function readKey(kid) {
    return fs.readFileSync(path.join(env.keys, `${kid}.key`), 'utf8')
        .replace(/\s+$/, '');
}

export function decodeJwt(token) {
    const [h, p] = token.split('.');
    return {
        header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
        claims: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
    };
}

// A JWT signed the way the module signs.  HS256 (access tokens):
// HMAC-SHA256 over base64url(header).base64url(payload) with the key
// file's text (k1.key, k2.key).  ES256 (join credentials): ECDSA P-256
// with a join key (j1.pem, j2.pem), the signature as JOSE's r || s.
// opts: kid (header), key (kid whose file signs; default = kid), alg
// (default: ES256 for the plugin's audience, a join credential, else
// HS256), header (replaces the whole header).
export function mintToken(claims, opts = {}) {
    const alg = opts.header?.alg ?? opts.alg ??
        (claims.aud === PLUGIN ? 'ES256' : 'HS256');
    const es = alg === 'ES256';
    const kid = opts.kid ?? (es ? 'j1' : 'k1');
    const header = opts.header ?? { alg, typ: 'JWT', kid };
    const signing = `${b64url(JSON.stringify(header))}.` +
        b64url(JSON.stringify(claims));
    if (header.alg === 'none') {
        return `${signing}.`;
    }
    if (es) {
        const pem = fs.readFileSync(path.join(env.keys,
            `${opts.key ?? (kid === 'j2' ? 'j2' : 'j1')}.pem`));
        const sig = crypto.sign('sha256', Buffer.from(signing),
            { key: pem, dsaEncoding: 'ieee-p1363' });
        return `${signing}.${b64url(sig)}`;
    }
    const secret = readKey(opts.key ?? (kid === 'k2' ? 'k2' : 'k1'));
    const sig = crypto.createHmac('sha256', secret).update(signing).digest();
    return `${signing}.${b64url(sig)}`;
}

// A join credential signed with a join key (ES256, kid j1 by default).
export function mintJoin(claims, opts = {}) {
    return mintToken(claims, { alg: 'ES256', kid: 'j1', ...opts });
}

// Verifies an ES256 JWT's signature with a join key's public half.
export function verifyJoinSignature(token, kid = 'j1') {
    const [h, p, s] = token.split('.');
    const pub = fs.readFileSync(path.join(env.keys, `${kid}.pub`));
    return crypto.verify('sha256', Buffer.from(`${h}.${p}`),
        { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
}

export function newJti() {
    return b64url(crypto.randomBytes(16));
}

export const now = () => Math.floor(Date.now() / 1000);

// --------------------------------------------------------------- Redis

export async function redis(...args) {
    const { stdout } = await execFileP('redis-cli',
        ['-h', '127.0.0.1', '-p', env.redisPort, '--raw', ...args],
        { timeout: 5000 });
    return stdout.replace(/\n$/, '');
}

export const patientLockKey = (patientId) => `th:patient:${patientId}:room`;
export const roomKey = (room) => `th:room:${room}`;

export async function stack(...args) {
    return execFileP(env.stack, args, { timeout: 90000 });
}

// The environment of every nginx command a test runs: a module built by
// `make asan` needs the sanitizers' runtime loaded first, and reports go
// where scripts/test.sh looks for them, as for the stack's own nginx
// (scripts/stack.sh).
export const nginxEnv = process.env.TH_SANITIZE
    ? { ...process.env,
        LD_PRELOAD: execFileSync('gcc',
            ['-print-file-name=libasan.so']).toString().trim(),
        ASAN_OPTIONS: 'detect_leaks=0:log_path='
            + path.join(process.env.TH_RUN, 'asan', 'nginx'),
        UBSAN_OPTIONS: 'print_stacktrace=1:log_path='
            + path.join(process.env.TH_RUN, 'asan', 'nginx-ubsan') }
    : process.env;

// A second nginx with the stack's own configuration on another port (its
// own pid file, logs and temp folders), the configuration passed through
// edit first, once it answers.  Answers {base, api, dir, pid, stop()};
// stop() ends it by its pid.
export async function startNginx(port, edit = (conf) => conf) {
    const runNginx = path.join(env.run, 'nginx');
    const conf = fs.readFileSync(path.join(runNginx, 'nginx.conf'), 'utf8');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-it-nginx2-'));
    for (const sub of ['logs', 'tmp']) {
        fs.mkdirSync(path.join(dir, sub));
    }
    if (process.getuid() === 0) {
        // The workers run as nobody and write the temp folders.
        execFileSync('chown', ['nobody', path.join(dir, 'tmp')]);
        fs.chmodSync(dir, 0o755);
    }
    const rendered = edit(conf
        .split(`${runNginx}/`).join(`${dir}/`)
        .replace(/listen\s+127\.0\.0\.1:\d+;/, `listen 127.0.0.1:${port};`));
    assert.match(rendered, new RegExp(`listen 127\\.0\\.0\\.1:${port}\\b`),
        'the second instance listens on its own port');
    fs.writeFileSync(path.join(dir, 'nginx.conf'), rendered);
    const pidFile = path.join(dir, 'nginx.pid');
    execFileSync('nginx', ['-p', `${dir}/`, '-c', path.join(dir, 'nginx.conf')],
        { stdio: 'pipe', timeout: 10000, env: nginxEnv });
    const base = `http://127.0.0.1:${port}`;
    const up = await nginxAnswers(base);
    assert.ok(up, `the second nginx answers on ${base}`);

    async function stop() {
        if (fs.existsSync(pidFile)) {
            const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
            try {
                process.kill(pid, 'SIGTERM');
                for (let i = 0; i < 50; i++) {
                    process.kill(pid, 0);
                    await sleep(100);
                }
                process.kill(pid, 'SIGKILL');
            } catch {
                // gone
            }
        }
        fs.rmSync(dir, { recursive: true, force: true });
    }
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return { base, api: `${base}/api/v1`, dir, pid, stop };
}

// ------------------------------------------------ identity provider

// as in conf/nginx.conf.in
export const ISSUER = 'https://idp.test.invalid/';
export const AUDIENCE = 'telehealth-api';
export const LEEWAY = 60;

export const jwksFile = path.join(env.run, 'idp/jwks.json');

// An identity provider's signing key: 'RSA' (RS256) or 'EC' (ES256).
export function newIdpKey(type, kid) {
    const pair = type === 'RSA'
        ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
        : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = pair.publicKey.export({ format: 'jwk' });
    return {
        kid,
        alg: type === 'RSA' ? 'RS256' : 'ES256',
        privateKey: pair.privateKey,
        publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }),
        jwk: { ...jwk, kid, use: 'sig', alg: type === 'RSA' ? 'RS256' : 'ES256' },
    };
}

// The organisation the identity provider signs in for (table idp_issuers,
// sql/019_security.sql): null removes the mapping.
export async function mapIdpIssuer(orgId, issuer = ISSUER) {
    if (orgId === null) {
        await sql('DELETE FROM idp_issuers WHERE issuer = $1', [issuer]);
        return;
    }
    await sql(`INSERT INTO idp_issuers (issuer, org_id) VALUES ($1, $2)
        ON CONFLICT (issuer) DO UPDATE SET org_id = EXCLUDED.org_id`,
    [issuer, orgId]);
}

// A JWT signed by key the way an identity provider signs it.
export function idpToken(key, claims, header = {}) {
    const h = { alg: key.alg, typ: 'JWT', kid: key.kid, ...header };
    const signing = `${b64url(JSON.stringify(h))}.` +
        b64url(JSON.stringify(claims));
    const sig = crypto.sign('sha256', Buffer.from(signing), {
        key: key.privateKey,
        dsaEncoding: 'ieee-p1363',   // JOSE: r || s
    });
    return `${signing}.${b64url(sig)}`;
}

// Writes the JWKS file the stack's nginx reads and reloads that nginx
// (reload: false for an nginx started afterwards: a reload closes the
// idle keep-alive connections of the old workers under the client).
export async function writeJwks(keys, { reload = true } = {}) {
    fs.mkdirSync(path.dirname(jwksFile), { recursive: true });
    fs.writeFileSync(jwksFile,
        JSON.stringify({ keys: keys.map((k) => k.jwk) }, null, 2));
    if (!reload) {
        return;
    }
    const prefix = path.join(env.run, 'nginx') + '/';
    await execFileP('nginx',
        ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-s', 'reload'],
        { timeout: 10000, env: nginxEnv });
}

// ----------------------------------------------------------- PostgreSQL

let pool;

export function db() {
    if (!pool) {
        pool = new pg.Pool({ connectionString: env.pg, max: 4 });
        // A stopped PostgreSQL (resilience tests) breaks idle clients.
        pool.on('error', () => {});
    }
    return pool;
}

export async function closeDb() {
    if (pool) {
        const p = pool;
        pool = undefined;
        await p.end().catch(() => {});
    }
}

export async function sql(text, params = []) {
    const res = await db().query(text, params);
    return res.rows;
}

// ------------------------------------------------------------- fixtures

const suffix = () => crypto.randomBytes(5).toString('hex');

async function insertStaff(client, orgId, role, name, tag, withLogin = true) {
    const email = `${role}.${tag}.${suffix()}@it.test`.toLowerCase();
    const { rows } = await client.query(
        `INSERT INTO staff (org_id, display_name, email, role)
         VALUES ($1, $2, $3, $4) RETURNING id`,
        [orgId, name, email, role]);
    const person = {
        type: 'staff', id: rows[0].id, orgId, role, name, email,
        login: withLogin, sub: `staff:${rows[0].id}`,
    };
    if (withLogin) {
        await client.query(
            `INSERT INTO logins (email, password_hash, staff_id)
             VALUES ($1, $2, $3)`, [email, env.passwordHash, person.id]);
    }
    return person;
}

async function insertPatient(client, orgId, name, tag, withLogin = true) {
    const email = `patient.${tag}.${suffix()}@it.test`.toLowerCase();
    const { rows } = await client.query(
        `INSERT INTO patients (org_id, display_name, email, mobile,
                               sms_capable, language)
         VALUES ($1, $2, $3, '+15550109999', false, 'en') RETURNING id`,
        [orgId, name, email]);
    const person = {
        type: 'patient', id: rows[0].id, orgId, role: null, name, email,
        login: withLogin, sub: `patient:${rows[0].id}`,
    };
    if (withLogin) {
        await client.query(
            `INSERT INTO logins (email, password_hash, patient_id)
             VALUES ($1, $2, $3)`, [email, env.passwordHash, person.id]);
    }
    return person;
}

export async function assign(staff, patient, client = db()) {
    await client.query(
        `INSERT INTO assignments (org_id, staff_id, patient_id)
         VALUES ($1, $2, $3)`, [staff.orgId, staff.id, patient.id]);
}

// Adds a patient to an organisation of createWorld(); assigned to the
// world's clinician unless assigned === false.
export async function addPatient(world, label = 'extra', opts = {}) {
    const tag = `${world.tag}.${label}`;
    const p = await insertPatient(db(), world.org.id,
        `Patient ${label} ${world.tag}`, tag, opts.login !== false);
    if (opts.assigned !== false) {
        await assign(world.clinician, p);
    }
    return p;
}

export async function addStaff(world, role, label) {
    return insertStaff(db(), world.org.id, role,
        `${role} ${label} ${world.tag}`, `${world.tag}.${label}`);
}

// A fresh organisation with staff of every role, a patient with a login
// assigned to the clinician, and a second organisation with its own admin,
// clinician and patient.  All in one transaction.
export async function createWorld(label) {
    const tag = `${label}.${suffix()}`;
    const client = await db().connect();
    try {
        await client.query('BEGIN');
        const mkOrg = async (name) => {
            const { rows } = await client.query(
                'INSERT INTO organisations (name) VALUES ($1) RETURNING id',
                [name]);
            return { id: rows[0].id, name };
        };
        const org = await mkOrg(`IT ${tag}`);
        const w = { tag, org };
        w.admin = await insertStaff(client, org.id, 'admin',
            `Admin ${tag}`, tag);
        w.supervisor = await insertStaff(client, org.id, 'supervisor',
            `Supervisor ${tag}`, tag);
        w.coordinator = await insertStaff(client, org.id, 'coordinator',
            `Coordinator ${tag}`, tag);
        w.clinician = await insertStaff(client, org.id, 'clinician',
            `Clinician ${tag}`, tag);
        w.unassigned = await insertStaff(client, org.id, 'clinician',
            `Unassigned Clinician ${tag}`, `${tag}.unassigned`);
        w.patient = await insertPatient(client, org.id,
            `Patient ${tag}`, tag);
        await assign(w.clinician, w.patient, client);

        const other = await mkOrg(`IT other ${tag}`);
        const otag = `${tag}.other`;
        w.other = { org: other, tag: otag };
        w.other.admin = await insertStaff(client, other.id, 'admin',
            `Other Admin ${tag}`, otag);
        w.other.clinician = await insertStaff(client, other.id, 'clinician',
            `Other Clinician ${tag}`, otag);
        w.other.patient = await insertPatient(client, other.id,
            `Other Patient ${tag}`, otag);
        await assign(w.other.clinician, w.other.patient, client);
        await client.query('COMMIT');
        return w;
    } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw e;
    } finally {
        client.release();
    }
}

// ---------------------------------------------------------------- Janus

let txCounter = 0;
const tx = () => `it-${process.pid}-${++txCounter}-${suffix()}`;

async function janusPost(url, body, timeoutMs = 10000) {
    const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    try {
        return JSON.parse(text);
    } catch {
        throw new Error(`Janus answered ${res.status} with non-JSON: ` +
            text.slice(0, 200));
    }
}

// One Janus session over the HTTP transport with a background long-poll
// (GET /janus/<session>?maxev=10) that collects every event.
export class JanusSession {
    constructor(id, base = env.janus) {
        this.id = id;
        this.url = `${base}/${id}`;
        this.events = [];
        this.waiters = new Set();
        this.closed = false;
        this.abort = new AbortController();
        this.loop = this.poll();
    }

    // base: another Janus node's HTTP transport (startJanus())
    static async create(base = env.janus) {
        const res = await janusPost(base, { janus: 'create',
            transaction: tx() });
        assert.equal(res.janus, 'success',
            `Janus create: ${JSON.stringify(res)}`);
        return new JanusSession(res.data.id, base);
    }

    async poll() {
        while (!this.closed) {
            let list;
            try {
                const res = await fetch(
                    `${this.url}?maxev=10&rid=${Date.now()}`,
                    { signal: this.abort.signal });
                const body = await res.json();
                list = Array.isArray(body) ? body : [body];
            } catch {
                if (this.closed) {
                    return;
                }
                await sleep(100);
                continue;
            }
            for (const ev of list) {
                if (ev.janus === 'keepalive') {
                    continue;
                }
                this.events.push(ev);
            }
            for (const w of [...this.waiters]) {
                w.check();
            }
        }
    }

    // Resolves with the first event (since index `from`) matching pred.
    waitFor(pred, timeoutMs = 5000, from = 0, what = 'event') {
        return new Promise((resolve, reject) => {
            const w = {
                check: () => {
                    const ev = this.events.slice(from).find(pred);
                    if (ev) {
                        clearTimeout(w.timer);
                        this.waiters.delete(w);
                        resolve(ev);
                    }
                },
            };
            w.timer = setTimeout(() => {
                this.waiters.delete(w);
                reject(new Error(`no ${what} within ${timeoutMs} ms; ` +
                    `events so far: ${JSON.stringify(this.events)
                        .slice(0, 1500)}`));
            }, timeoutMs);
            this.waiters.add(w);
            w.check();
        });
    }

    async attach(plugin = PLUGIN) {
        const res = await janusPost(this.url, { janus: 'attach', plugin,
            transaction: tx() });
        assert.equal(res.janus, 'success',
            `Janus attach: ${JSON.stringify(res)}`);
        return new JanusHandle(this, res.data.id);
    }

    async destroy() {
        if (this.closed) {
            return;
        }
        this.closed = true;
        await janusPost(this.url, { janus: 'destroy', transaction: tx() })
            .catch(() => {});
        this.abort.abort();
        for (const w of this.waiters) {
            clearTimeout(w.timer);
        }
        this.waiters.clear();
        await this.loop.catch(() => {});
    }
}

export class JanusHandle {
    constructor(session, id) {
        this.session = session;
        this.id = id;
        this.url = `${session.url}/${id}`;
    }

    // Plugin data of every event so far sent by this handle.
    pluginEvents(from = 0) {
        return this.session.events.slice(from)
            .filter((e) => e.sender === this.id && e.plugindata)
            .map((e) => e.plugindata.data);
    }

    // Waits for an event of this handle whose plugin data matches pred;
    // resolves with the plugin data.
    async waitData(pred, timeoutMs = 5000, from = 0, what = 'plugin event') {
        const ev = await this.session.waitFor(
            (e) => e.sender === this.id && e.plugindata &&
                pred(e.plugindata.data, e),
            timeoutMs, from, what);
        return ev.plugindata.data;
    }

    // Sends a plugin message and returns {data, jsep, janus}: the plugin's
    // answer, synchronous ("success") or the event carrying the same
    // transaction ("ack" first).  A Janus core error comes back as
    // {janus: "error", error}.
    async message(body, jsep, timeoutMs = 5000) {
        const t = tx();
        const from = this.session.events.length;
        const msg = { janus: 'message', body, transaction: t };
        if (jsep) {
            msg.jsep = jsep;
        }
        const res = await janusPost(this.url, msg);
        if (res.janus === 'success') {
            return { janus: 'success', data: res.plugindata?.data, raw: res };
        }
        if (res.janus === 'error') {
            return { janus: 'error', error: res.error, raw: res };
        }
        assert.equal(res.janus, 'ack', `message: ${JSON.stringify(res)}`);
        const ev = await this.session.waitFor(
            (e) => e.transaction === t && e.sender === this.id,
            timeoutMs, from, `answer to ${JSON.stringify(body)
                .replace(/"credential":"[^"]*"/, '"credential":"…"')}`);
        if (ev.janus === 'error') {
            return { janus: 'error', error: ev.error, raw: ev };
        }
        return { janus: ev.janus, data: ev.plugindata?.data, jsep: ev.jsep,
            raw: ev };
    }
}

// A participant connected to the plugin: Janus session + handle.
export async function connect(base = env.janus) {
    const session = await JanusSession.create(base);
    const handle = await session.attach();
    return { session, handle };
}

// Polls fn until it returns a truthy value or timeoutMs passes; returns
// the last value.
// A throw counts as "not yet" (a request that meets a connection nginx
// closed while it reloads) until the time is up; then it is thrown.
export async function eventually(fn, timeoutMs = 5000, everyMs = 100) {
    const end = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            last = await fn();
        } catch (err) {
            if (Date.now() > end) {
                throw err;
            }
            last = undefined;
        }
        if (last || Date.now() > end) {
            return last;
        }
        await sleep(everyMs);
    }
}

// ------------------------------------------- plugin protocol (docs/plugin.md)

// Connects to the plugin and sends "join" with the credential.  Returns
// {session, handle, answer}; answer is handle.message()'s result.
export async function joinRoom(credential, base = env.janus) {
    const conn = await connect(base);
    conn.answer = await conn.handle.message({ request: 'join', credential });
    return conn;
}

export const isPluginError = (d) => d != null && d.error_code !== undefined;

// Asks the API for a join credential and joins the room with it.
export async function joinAs(token, sessionId) {
    const res = await joinCredential(token, sessionId);
    assertStatus(res, 200, `join credential for ${sessionId}`);
    const conn = await joinRoom(res.body.credential);
    assert.ok(!isPluginError(conn.answer.data),
        `join: ${JSON.stringify(conn.answer.data)}`);
    conn.credential = res.body;
    return conn;
}

export async function leaveRoom(conn) {
    return conn.handle.message({ request: 'leave' });
}

// Closes an open video_call room the way the product does: its chair (a
// staff member on the session) joins and leaves, which closes the room for
// everyone; then waits until the patient lock is gone.  Returns true when
// it is.
export async function closeRoomAsChair(token, session, timeoutMs = 5000) {
    const conn = await joinAs(token, session.id);
    try {
        await leaveRoom(conn);
    } finally {
        await conn.session.destroy();
    }
    return eventually(async () =>
        (await redis('EXISTS', patientLockKey(session.patient_id))) === '0',
    timeoutMs);
}

// A second Janus node on the stack's Redis: the stack's own configuration
// with its own HTTP port, no WebSocket transport, and node_id `nodeId`
// (its own folder; stopped, or killed, by its pid).  Returns {base (its
// HTTP API), nodeId, pid, kill(signal), stop()}.
// Lifts a drain mark (docs/redis.md, "Nodes and placement") and waits for
// the node's next heartbeat, after which its joins take new rooms again;
// a node whose heartbeat is gone is done with at once.
export async function undrain(nodeId, timeoutMs = 10000) {
    await redis('DEL', `th:drain:${nodeId}`);
    const ok = await eventually(async () => {
        const [exists, draining] = [await redis('EXISTS', `th:node:${nodeId}`),
            await redis('HGET', `th:node:${nodeId}`, 'draining')];
        return exists === '0' || draining === '0';
    }, timeoutMs, 200);
    assert.ok(ok, `node ${nodeId} takes rooms again`);
}

export async function startJanus(port, nodeId, edit = (name, text) => text) {
    const etc = path.join(env.run, 'janus', 'etc');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-it-janus2-'));
    const conf = path.join(dir, 'etc');
    fs.mkdirSync(conf);
    for (const name of fs.readdirSync(etc)) {
        if (name === 'janus.transport.websockets.jcfg') {
            continue;
        }
        let text = fs.readFileSync(path.join(etc, name), 'utf8');
        text = text.split(path.join(env.run, 'janus')).join(dir);
        if (name === 'janus.transport.http.jcfg') {
            text = text.replace(/port = \d+/, `port = ${port}`);
        }
        if (name === 'janus.plugin.telehealth.jcfg') {
            text = text.replace(/node_id = "[^"]*"/, `node_id = "${nodeId}"`);
        }
        fs.writeFileSync(path.join(conf, name), edit(name, text));
    }
    const janusDir = path.join(env.run, 'janus');
    for (const sub of ['plugins', 'transports']) {
        fs.mkdirSync(path.join(dir, sub));
        for (const f of fs.readdirSync(path.join(janusDir, sub))) {
            if (f.includes('websockets')) {
                continue;
            }
            fs.symlinkSync(fs.realpathSync(path.join(janusDir, sub, f)),
                path.join(dir, sub, f));
        }
    }
    fs.mkdirSync(path.join(dir, 'empty'), { recursive: true });
    const child = spawn('janus', ['-F', conf, '-o', '-N', '-L',
        path.join(dir, 'janus.log')], { stdio: 'ignore', detached: true });
    child.unref();
    const base = `http://127.0.0.1:${port}/janus`;
    const up = await eventually(async () =>
        (await fetch(`${base}/info`)).ok, 10000, 100);
    assert.ok(up, `the second Janus answers on ${base}`);

    const alive = () => {
        try {
            process.kill(child.pid, 0);
            return true;
        } catch {
            return false;
        }
    };
    async function stop() {
        if (alive()) {
            process.kill(child.pid, 'SIGTERM');
            for (let i = 0; i < 50 && alive(); i++) {
                await sleep(100);
            }
            if (alive()) {
                process.kill(child.pid, 'SIGKILL');
            }
        }
        fs.rmSync(dir, { recursive: true, force: true });
    }
    return { base, nodeId, pid: child.pid, dir, alive,
        kill: (signal) => process.kill(child.pid, signal), stop };
}

// Waits until an nginx on `base` answers; true when it does.
export function nginxAnswers(base) {
    return eventually(async () => {
        try {
            const r = await fetch(`${base}/bench/return200`,
                { signal: AbortSignal.timeout(1000) });
            return r.status === 200;
        } catch {
            return false;
        }
    }, 5000);
}

// --------------------------------------------------- fake SMS provider

// The SMS provider of the local stack (telehealth_sms_url in
// conf/nginx.conf.in points at 127.0.0.1:TH_SMS_PORT): records every
// request it gets, with its form fields, and answers `status` (set it to
// 500 to play a provider that is down).  Started by the test; close() it.
export async function startFakeSms(port = Number(process.env.TH_SMS_PORT ||
    61990)) {
    return startFakeProvider(port, 'To');
}

// The fake WhatsApp provider of conf/nginx.conf.in: JSON {to, body, ...}.
export async function startFakeWhatsapp(port = Number(
    process.env.TH_WHATSAPP_PORT || 61992)) {
    return startFakeProvider(port, 'to');
}

// A messaging provider's HTTP API on loopback that records every request
// and answers with provider.status; toField names the recipient's field.
async function startFakeProvider(port, toField) {
    const http = await import('node:http');
    const sms = { received: [], status: 200 };
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            const ct = req.headers['content-type'] || '';
            let fields = {};
            if (/json/.test(ct)) {
                try {
                    fields = JSON.parse(body);
                } catch {
                    fields = {};
                }
            } else {
                fields = Object.fromEntries(new URLSearchParams(body));
            }
            const status = sms.status;
            sms.received.push({ method: req.method, url: req.url,
                headers: req.headers, body, fields, status });
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(status < 300 ? '{"ok":true}' : '{"error":"down"}');
        });
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
    });
    sms.close = () => new Promise((r) => server.close(() => r()));
    // what was accepted (2xx) for one number
    sms.delivered = (to) => sms.received.filter((m) =>
        m.fields[toField] === to && m.status < 300);
    sms.tried = (to) => sms.received.filter((m) => m.fields[toField] === to);
    return sms;
}

// The SMTP server of conf/nginx.conf.in on loopback, with STARTTLS (the
// certificate scripts/stack.sh made, which nginx trusts): records every
// message it accepted ({from, to, subject, text, headers, messageId, user,
// secure}) and every recipient offered.  A recipient whose local part starts with
// "reject-" is refused with 550, "busy-" with 451.
export async function startSmtpSink(port = Number(process.env.TH_SMTP_PORT ||
    61991)) {
    const { SMTPServer } = await import('smtp-server');
    const { simpleParser } = await import('mailparser');
    const fs = await import('node:fs/promises');
    const keys = process.env.TH_KEYS;
    const sink = { received: [], offered: [] };
    const server = new SMTPServer({
        logger: false,
        key: await fs.readFile(`${keys}/smtp.key`),
        cert: await fs.readFile(`${keys}/smtp.crt`),
        authOptional: true,
        onAuth(auth, session, callback) {
            if (auth.username === 'telehealth' &&
                auth.password === 'local-test-smtp-password') {
                return callback(null, { user: auth.username });
            }
            return callback(new Error('Invalid username or password'));
        },
        onRcptTo(address, session, callback) {
            sink.offered.push(address.address);
            const local = address.address.split('@')[0];
            const refuse = (code, text) => {
                const err = new Error(text);
                err.responseCode = code;
                callback(err);
            };
            if (local.startsWith('reject-')) {
                return refuse(550, 'No such user here');
            }
            if (local.startsWith('busy-')) {
                return refuse(451, 'Try again later');
            }
            return callback();
        },
        onData(stream, session, callback) {
            simpleParser(stream).then((mail) => {
                sink.received.push({
                    from: session.envelope.mailFrom.address,
                    to: session.envelope.rcptTo.map((r) => r.address),
                    user: session.user ?? null,
                    secure: session.secure,
                    subject: mail.subject,
                    text: mail.text,
                    messageId: mail.messageId,
                    headers: mail.headers,
                    headerLines: mail.headerLines,
                });
                callback();
            }, callback);
        },
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
    });
    sink.close = () => new Promise((r) => server.close(() => r()));
    sink.to = (addr) => sink.received.filter((m) => m.to.includes(addr));
    return sink;
}

// A mobile number no other test uses.
export function uniqueMobile() {
    return '+1555' + String(crypto.randomInt(0, 10_000_000)).padStart(7, '0');
}

// The patient's mobile number and SMS flag.
export async function setMobile(patient, mobile, smsCapable = true) {
    await sql('UPDATE patients SET mobile = $2, sms_capable = $3 WHERE id = $1',
        [patient.id, mobile, smsCapable]);
    patient.mobile = mobile;
}

// The outbox rows of a session.
export function notificationsOf(sessionId) {
    return sql(`SELECT channel, recipient, template, language, params,
                       subject, body, status, reason, attempts,
                       idempotency_key
                  FROM notifications WHERE session_id = $1
                 ORDER BY created_at`, [sessionId]);
}
