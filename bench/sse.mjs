// nginx with many open console event streams (GET /api/v1/me/events) and
// one event fanned out to all of them (bench/sse.sh runs it; bench/README.md
// says what is measured).  Against the local stack, 127.0.0.1 only.
//
// Two phases, each on fresh nginx workers (the master is sent SIGHUP, the
// new workers warmed up first), so that memory one phase freed is not
// reused by the next:
//   1. the baseline: N keep-alive connections, each after one request to
//      the "return 200" location, left open;
//   2. N console streams, opened as a console opens them (staff tokens
//      from POST /auth/login, the people made by POST /staff), all on one
//      session's participant list; an idle window; then chat messages
//      posted to that session (POST /sessions/{id}/messages), each an
//      event every stream receives.
// Memory is the nginx workers' RSS and PSS (/proc/<pid>/smaps_rollup)
// before and after; CPU their time on CPU (/proc/<pid>/task/*/schedstat,
// nanoseconds, every thread).  Nothing is asserted on time: the run fails
// only when a stream does not open or does not get an event.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const env = process.env;
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const RUN = env.TH_RUN || path.join(ROOT, 'run');
const PORT = Number(env.TH_NGINX_PORT || 58080);
const TOKEN = env.TH_BENCH_TOKEN;
const N = Number(env.BENCH_SSE_STREAMS || 1000);
const PER = Number(env.BENCH_SSE_PER_PERSON || 8);
const WINDOW = Number(env.BENCH_SSE_WINDOW_MS || 10000);
const EVENTS = Number(env.BENCH_SSE_EVENTS || 3);
const PASSWORD = env.BENCH_SSE_PASSWORD || 'bench-sse-password-not-secret';
const OPEN_AT_ONCE = 50;
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function die(msg) {
    console.error(`bench/sse: error: ${msg}`);
    process.exit(1);
}

if (!TOKEN) die('TH_BENCH_TOKEN is not set (bench/run.sh)');
if (!(N > 0) || !(PER > 0)) die('BENCH_SSE_STREAMS and BENCH_SSE_PER_PERSON must be > 0');

// one API call; resolves { status, body, headers }
function api(method, p, { token = TOKEN, body } = {}) {
    return new Promise((resolve, reject) => {
        const data = body === undefined ? undefined : JSON.stringify(body);
        const req = http.request({
            host: '127.0.0.1', port: PORT, method, path: `/api/v1${p}`, agent,
            headers: {
                ...(token ? { authorization: `Bearer ${token}` } : {}),
                ...(data ? { 'content-type': 'application/json',
                    'content-length': Buffer.byteLength(data) } : {}),
            },
        }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c) => { text += c; });
            res.on('end', () => {
                let json = null;
                try { json = text ? JSON.parse(text) : null; } catch { /* */ }
                resolve({ status: res.statusCode, body: json, text });
            });
        });
        req.setTimeout(60000, () => req.destroy(new Error(`${method} ${p}: timeout`)));
        req.on('error', reject);
        req.end(data);
    });
}

// retried while nginx says "later" (argon2id queue full, 503/429)
async function apiRetry(method, p, opts) {
    for (let i = 0; ; i++) {
        const res = await api(method, p, opts);
        if ((res.status !== 503 && res.status !== 429) || i >= 60) return res;
        await sleep(500);
    }
}

async function pool(items, width, fn) {
    const out = new Array(items.length);
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
        while (next < items.length) {
            const i = next++;
            out[i] = await fn(items[i], i);
        }
    }));
    return out;
}

// --- nginx's processes --------------------------------------------------

function master() {
    return Number(fs.readFileSync(path.join(RUN, 'nginx/nginx.pid'), 'utf8').trim());
}

function workers() {
    const m = master();
    const pids = [];
    for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
            const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (Number(f[1]) === m) pids.push(Number(d));
        } catch { /* gone */ }
    }
    return pids.sort((a, b) => a - b);
}

// kB fields of smaps_rollup, summed over the workers, in bytes
function memory(pids) {
    const sum = { rss: 0, pss: 0, priv: 0 };
    for (const pid of pids) {
        const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
        const kb = (name) => Number((text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm')) || [0, 0])[1]) * 1024;
        sum.rss += kb('Rss');
        sum.pss += kb('Pss');
        sum.priv += kb('Private_Clean') + kb('Private_Dirty');
    }
    return sum;
}

// nanoseconds on CPU, every thread of every worker (argon2id, the thread
// pool, counts too)
function cpu(pids) {
    let ns = 0;
    for (const pid of pids) {
        for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
            try {
                ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
            } catch { /* thread gone */ }
        }
    }
    return ns;
}

// new workers: SIGHUP to the master, the old ones gone, the new warmed up
async function freshWorkers() {
    const old = new Set(workers());
    process.kill(master(), 'SIGHUP');
    for (let i = 0; i < 300; i++) {
        await sleep(100);
        const now = workers();
        if (now.length && now.every((p) => !old.has(p))) break;
        if (i === 299) die('nginx workers were not replaced after SIGHUP');
    }
    // kept-alive sockets of the old workers are closed now
    agent.destroy();
    // the PostgreSQL pool, the LISTEN connection, Redis, the token cache
    for (let i = 0, ok = 0; ok < 40; i++) {
        const res = await api('GET', '/sessions?limit=1').catch(() => null);
        if (res?.status === 200) {
            ok++;
        } else if (i >= 200) {
            die(`GET /sessions after the reload answered ${res?.status ?? 'nothing'}`);
        } else {
            await sleep(100);
        }
    }
    await sleep(1000);
    return workers();
}

function fmtBytes(b) { return `${Math.round(b)}`; }

function pct(sorted, p) {
    if (!sorted.length) return NaN;
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
// a keep-alive connection costs a few hundred bytes, near the pages' noise
const ratio = (a, b) => (b >= 64 ? f2(a / b) : `n/a (keep-alive ${Math.round(b)} bytes)`);

// --- the people and their session ---------------------------------------

const me = await api('GET', '/me');
if (me.status !== 200) die(`GET /me of the benchmark user answered ${me.status}`);
const org = me.body.org_id;

const people = Math.ceil(N / PER);
const t0 = performance.now();
// made once, by an admin through the API; later runs find them
const existing = new Set();
for (let cursor = null; ;) {
    const res = await api('POST', '/staff/search', {
        body: { q: 'sse-', limit: 200, ...(cursor ? { cursor } : {}) },
    });
    if (res.status !== 200) die(`POST /staff/search answered ${res.status}`);
    res.body.items.forEach((s) => existing.add(s.email));
    cursor = res.body.next_cursor;
    if (!cursor) break;
}
const persons = await pool(Array.from({ length: people }, (_, i) => i + 1), 4, async (i) => {
    const email = `sse-${String(i).padStart(4, '0')}@bench.test`;
    if (existing.has(email)) return email;
    const made = await apiRetry('POST', '/staff', {
        body: { display_name: `SSE Console ${i}`, email, role: 'clinician', password: PASSWORD },
    });
    if (made.status !== 201 && made.status !== 409) die(`POST /staff answered ${made.status}: ${made.text}`);
    return email;
});
const logins = await pool(persons, 8, async (email) => {
    const res = await apiRetry('POST', '/auth/login', {
        token: null, body: { email, password: PASSWORD, organisation: org },
    });
    if (res.status !== 200) die(`login of ${email} answered ${res.status}: ${res.text}`);
    return { token: res.body.access_token, id: res.body.user.id };
});
const setupSeconds = (performance.now() - t0) / 1000;

const session = await api('POST', '/sessions', {
    body: {
        kind: 'meeting_room', name: 'Bench console streams', access: 'private',
        // broadcasters (the default role): 1,000 of them fit the 64k body
        participants: logins.map((p) => ({ type: 'staff', id: p.id })),
        policies: { max_participants: 0 },
    },
});
if (session.status !== 201) die(`POST /sessions answered ${session.status}: ${session.text}`);
const sessionId = session.body.id;

async function closeSession() {
    await api('POST', `/sessions/${sessionId}/close`, { body: { mode: 'close' } });
}

// a chat message to the session: an event for each of its staff
async function post(text) {
    const res = await api('POST', `/sessions/${sessionId}/messages`, { body: { text } });
    if (res.status !== 201) die(`POST /sessions/{id}/messages answered ${res.status}: ${res.text}`);
}

// --- phase 1: N keep-alive connections to return 200 -------------------

let pids = await freshWorkers();
const kaBefore = memory(pids);
const kaSockets = [];
await pool(Array.from({ length: N }, (_, i) => i), OPEN_AT_ONCE, () => new Promise((resolve, reject) => {
    const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const req = http.get({ host: '127.0.0.1', port: PORT, path: '/bench/return200', agent: a }, (res) => {
        res.resume();
        res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`return200 answered ${res.statusCode}`));
            kaSockets.push(a);
            resolve();
        });
    });
    req.on('error', reject);
}));
await sleep(1000);
const kaAfter = memory(pids);
for (const a of kaSockets) a.destroy();
const kaPer = {
    rss: (kaAfter.rss - kaBefore.rss) / N,
    pss: (kaAfter.pss - kaBefore.pss) / N,
    priv: (kaAfter.priv - kaBefore.priv) / N,
};

// --- phase 2: N console streams ------------------------------------------

pids = await freshWorkers();

// the control: the same action with no stream open (the request's own
// cost, and the notifications nobody on this worker waits for), over the
// POST and 20 ms after it; the worker's timers (the notification outbox,
// the reconciliation) may fall into a window, so the median counts
const idleCpuA = cpu(pids);
await sleep(1000);
const idleNoStreams = (cpu(pids) - idleCpuA) / 1e9;
const control = [];
for (let e = 0; e < Math.max(EVENTS, 3); e++) {
    const c0 = cpu(pids);
    await post(`bench control ${e}`);
    await sleep(20);
    control.push((cpu(pids) - c0) / 1e6);
    await sleep(200);
}

const memBefore = memory(pids);
const streams = [];
let heartbeats = 0;
let wanted = null; // the text of the message each stream waits for
let tSent = 0;

function openStream(k) {
    const who = logins[Math.floor(k / PER)];
    return new Promise((resolve, reject) => {
        const st = { k, got: null, buf: '' };
        const req = http.get({
            host: '127.0.0.1', port: PORT, path: '/api/v1/me/events', agent: false,
            headers: { authorization: `Bearer ${who.token}`, accept: 'text/event-stream' },
        }, (res) => {
            if (res.statusCode !== 200) {
                res.resume();
                reject(new Error(`GET /me/events answered ${res.statusCode}`));
                return;
            }
            res.setEncoding('utf8');
            st.res = res;
            res.on('data', (chunk) => {
                st.buf += chunk;
                let end;
                while ((end = st.buf.indexOf('\n\n')) >= 0) {
                    const block = st.buf.slice(0, end);
                    st.buf = st.buf.slice(end + 2);
                    if (block === ':') {
                        heartbeats++;
                    } else if (wanted && block.includes('\nevent: message\n') && block.includes(wanted)) {
                        st.got = performance.now() - tSent;
                    }
                }
            });
            res.on('close', () => { st.closed = true; });
            resolve(st);
        });
        req.on('error', reject);
        st.req = req;
    });
}

const tOpen = performance.now();
const opened = await pool(Array.from({ length: N }, (_, k) => k), OPEN_AT_ONCE,
    (k) => openStream(k).catch((err) => die(`stream ${k}: ${err.message}`)));
streams.push(...opened);
const openSeconds = (performance.now() - tOpen) / 1000;
await sleep(1000);
const memOpen = memory(pids);

// idle, N streams open
heartbeats = 0;
const ic0 = cpu(pids);
await sleep(WINDOW);
const idleCpu = (cpu(pids) - ic0) / 1e9;
const idleBeats = heartbeats;
const memIdle = memory(pids);
const idleRate = idleCpu / (WINDOW / 1000); // CPU s per s

// the fan-out, EVENTS times
const rounds = [];
for (let e = 0; e < EVENTS; e++) {
    for (const st of streams) st.got = null;
    wanted = `bench fan-out ${process.pid}-${e}`;
    const c0 = cpu(pids);
    tSent = performance.now();
    const p0 = performance.now();
    await post(wanted);
    const answered = performance.now() - p0;
    const deadline = performance.now() + 30000;
    while (streams.some((st) => st.got === null) && performance.now() < deadline) {
        await sleep(5);
    }
    const spent = performance.now() - tSent;
    const c1 = cpu(pids);
    const lat = streams.map((st) => st.got).filter((x) => x !== null).sort((a, b) => a - b);
    rounds.push({
        received: lat.length, answered, lat,
        cpuMs: (c1 - c0) / 1e6 - idleRate * spent,
    });
    await sleep(500);
}
wanted = null;
const closedEarly = streams.filter((st) => st.closed).length;
for (const st of streams) st.req.destroy();
await closeSession();
agent.destroy();

// --- figures --------------------------------------------------------------

const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const per = {
    rss: (memOpen.rss - memBefore.rss) / N,
    pss: (memOpen.pss - memBefore.pss) / N,
    priv: (memOpen.priv - memBefore.priv) / N,
};
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };
const all = rounds.flatMap((r) => r.lat).sort((a, b) => a - b);
const controlMs = median(control);
const fanMs = median(rounds.map((r) => r.cpuMs));
const minReceived = Math.min(...rounds.map((r) => r.received));

console.log(`sse: ${N} streams, ${people} people (${PER} streams each at most), ${pids.length} worker(s), `
    + `opened in ${openSeconds.toFixed(1)} s (people made and logged in: ${setupSeconds.toFixed(1)} s), `
    + `load average ${load}`);
console.log(`sse keep-alive per connection: RSS ${fmtBytes(kaPer.rss)} bytes, PSS ${fmtBytes(kaPer.pss)} bytes, `
    + `private ${fmtBytes(kaPer.priv)} bytes (${N} idle keep-alive connections after one return 200 each)`);
console.log(`sse memory per stream: RSS ${fmtBytes(per.rss)} bytes, PSS ${fmtBytes(per.pss)} bytes, `
    + `private ${fmtBytes(per.priv)} bytes; stream/keep-alive ratio RSS ${ratio(per.rss, kaPer.rss)}, `
    + `PSS ${ratio(per.pss, kaPer.pss)} (workers ${Math.round(memBefore.rss / 1024)} -> ${Math.round(memOpen.rss / 1024)} KiB RSS)`);
console.log(`sse idle: nginx CPU ${(idleRate * 1000).toFixed(2)} ms/s with ${N} streams open `
    + `(${(idleNoStreams * 1000).toFixed(2)} ms/s with none), ${idleBeats} heartbeats in ${WINDOW / 1000} s, `
    + `${f2(idleBeats ? (idleCpu - idleNoStreams * WINDOW / 1000) * 1e6 / idleBeats : NaN)} us per heartbeat; `
    + `memory growth over the window ${fmtBytes((memIdle.rss - memOpen.rss) / N)} bytes RSS per stream `
    + `(${f2(idleBeats ? (memIdle.rss - memOpen.rss) / idleBeats : NaN)} per heartbeat)`);
rounds.forEach((r, e) => {
    console.log(`sse fan-out ${e + 1}: ${r.received}/${N} streams; action -> first ${f2(r.lat[0])} ms, `
        + `p50 ${f2(pct(r.lat, 50))}, p99 ${f2(pct(r.lat, 99))}, max ${f2(r.lat[r.lat.length - 1])} ms `
        + `(POST answered in ${f2(r.answered)} ms); nginx CPU ${f2(r.cpuMs)} ms`);
});
console.log(`sse fan-out: ${minReceived}/${N} streams got each of ${EVENTS} events; action -> first `
    + `${f2(all[0])} ms, p50 ${f2(pct(all, 50))}, p99 ${f2(pct(all, 99))}, max ${f2(all[all.length - 1])} ms; `
    + `nginx CPU ${f2(fanMs)} ms a fan-out (median), the same action with no stream open ${f2(controlMs)} ms: `
    + `${f2((fanMs - controlMs) * 1000 / N)} us per stream; fan-out/control ratio ${f2(fanMs / controlMs)}`);

if (minReceived !== N) die(`an event reached ${minReceived} of ${N} streams`);
if (closedEarly) die(`${closedEarly} streams closed before the end`);
