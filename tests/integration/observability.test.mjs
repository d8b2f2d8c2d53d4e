// Operation (docs/operations.md): /metrics in Prometheus' text format for
// the module and, through the nodes' heartbeats, for every Janus node
// (promtool checks it); /health tells whether this nginx can serve and
// which nodes are live; a database schema that is not the module's is one
// 503 naming both versions for every route and one line in the error log;
// the access log is JSON without query strings.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    api, assertProblem, assertStatus, closeDb, createWorld, env,
    eventually, isPluginError, joinCredential, joinRoom, loginAll, redis,
    sql, startNginx, undrain,
} from './lib.mjs';

const execFileP = promisify(execFile);
const NGINX2_PORT = Number(process.env.TH_NGINX2_PORT || 61081);
const STACK_NODE = process.env.TH_NODE_ID || 'local-1';

// the version this build needs: its last migration's number
const MODULE_SCHEMA = fs.readdirSync(path.join(env.root, 'sql'))
    .map((f) => /^(\d{3})_.*\.sql$/.exec(f)?.[1]).filter(Boolean).sort()
    .pop();

let w;
const conns = [];

before(async () => {
    w = await createWorld('observability');
    await loginAll([w.coordinator, w.admin]);
});

after(async () => {
    await Promise.all(conns.map((c) => c.session.destroy().catch(() => {})));
    await closeDb();
});

async function metrics(base = env.base) {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    return res.text();
}

function promtool(text) {
    return new Promise((resolve) => {
        const child = execFile('promtool', ['check', 'metrics'],
            (err, stdout, stderr) => resolve({ code: err ? err.code : 0,
                out: stdout + stderr }));
        child.stdin.end(text);
    });
}

// the value of one sample, by its name and labels as written
function sample(text, series) {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('/metrics', () => {
    test('test_metrics_of_module_and_plugin_pass_promtool', async () => {
        // traffic to count: a refused login, API calls, a join in Janus
        const bad = await api('POST', '/auth/login', { body: {
            email: w.admin.email, password: 'not the password' } });
        assert.equal(bad.status, 401);
        const s = await api('POST', '/sessions', { token: w.coordinator.token,
            body: { kind: 'telehealth', name: 'metrics' } });
        assertStatus(s, 201, 'POST /sessions');
        const cred = await joinCredential(w.coordinator.token, s.body.id);
        const conn = await joinRoom(cred.body.credential);
        conns.push(conn);
        assert.ok(!isPluginError(conn.answer.data));

        // the node's next heartbeat carries the join
        let text;
        assert.ok(await eventually(async () => {
            text = await metrics();
            return sample(text, 'telehealth_janus_join_duration_seconds_count'
                + `{node="${STACK_NODE}"}`) >= 1;
        }, 10000, 500), 'the plugin\'s join reaches /metrics');

        const check = await promtool(text);
        assert.equal(check.code, 0, `promtool check metrics: ${check.out}`);

        assert.ok(sample(text, 'telehealth_http_requests_total{method="POST",'
            + 'route="/sessions",code="201"}') >= 1);
        assert.ok(sample(text, 'telehealth_logins_refused_total'
            + '{reason="invalid_credentials"}') >= 1);
        assert.ok(sample(text,
            'telehealth_http_request_duration_seconds_count') >= 3);
        assert.ok(sample(text, 'telehealth_postgres_pool_size') >= 1);
        assert.ok(sample(text, 'telehealth_redis_up') >= 1);
        assert.equal(sample(text, 'telehealth_schema_ok'), 1);
        for (const name of ['telehealth_outbox_pending',
            'telehealth_outbox_failed', 'telehealth_events_lag',
            'telehealth_console_streams_open',
            'telehealth_postgres_pool_in_use',
            'telehealth_postgres_pool_waiting']) {
            assert.ok(sample(text, name) >= 0, `${name} is there`);
        }
        assert.equal(sample(text, `telehealth_janus_up{node="${STACK_NODE}"}`),
            1);
        assert.ok(sample(text, 'telehealth_janus_participants'
            + `{node="${STACK_NODE}"}`) >= 0);
        for (const name of ['telehealth_janus_forwarded_packets_total',
            'telehealth_janus_forwarded_bytes_total',
            'telehealth_janus_redis_errors_total',
            'telehealth_janus_publishers', 'telehealth_janus_subscribers']) {
            assert.ok(sample(text, `${name}{node="${STACK_NODE}"}`) >= 0,
                `${name} is there`);
        }
        console.log(`# /metrics: ${text.split('\n').length} lines, `
            + 'promtool check metrics passed');
    });

    test('test_promtool_refuses_a_broken_exposition', async () => {
        // the check can fail: a counter without _total, a sample twice
        const check = await promtool('# TYPE broken counter\nbroken 1\n'
            + 'broken 2\n');
        assert.notEqual(check.code, 0);
    });
});

describe('counters across a reload', () => {
    test('test_counters_outlive_a_reload_and_the_master_lives_on', async () => {
        const nginx2 = await startNginx(NGINX2_PORT);
        try {
            // a fresh nginx answers 503 until its revocations feed synced
            assert.ok(await eventually(async () => (await api('GET',
                `${nginx2.api}/health`)).status === 200, 10000, 100),
            'the second nginx serves');
            for (let i = 0; i < 3; i++) {
                assertStatus(await api('GET', `${nginx2.api}/health`), 200,
                    'GET /health');
            }
            const count = (text) => sample(text, 'telehealth_http_requests_total'
                + '{method="GET",route="/health",code="200"}');
            const before = count(await metrics(nginx2.base));
            assert.ok(before >= 3, `counted: ${before}`);
            const workers = () => execFileP('pgrep', ['-P',
                String(nginx2.pid)]).then((r) => r.stdout.trim().split('\n'));
            const old = await workers();
            // the old worker exits once reloaded: its zone stays, the
            // master goes on (it unlocks a leaving worker's zones)
            process.kill(nginx2.pid, 'SIGHUP');
            assert.ok(await eventually(async () => {
                const now = await workers().catch(() => []);
                return now.length > 0 && !now.some((p) => old.includes(p));
            }, 10000, 200), 'the old worker is gone');
            await new Promise((r) => setTimeout(r, 500));
            process.kill(nginx2.pid, 0);    // throws if the master died
            const after = count(await metrics(nginx2.base));
            assert.ok(after >= before, `kept across the reload: ${before} `
                + `-> ${after}`);
        } finally {
            await nginx2.stop();
        }
    });
});

describe('/health', () => {
    test('test_health_names_schema_and_live_nodes_with_their_drain',
        async () => {
            const res = await api('GET', '/health');
            assertStatus(res, 200, 'GET /health');
            assert.equal(res.body.status, 'ok');
            assert.deepEqual(res.body.schema, { module: MODULE_SCHEMA,
                database: MODULE_SCHEMA, ok: true });
            const node = res.body.nodes.find((n) => n.node === STACK_NODE);
            assert.ok(node, JSON.stringify(res.body.nodes));
            assert.equal(node.draining, false);

            await redis('SET', `th:drain:${STACK_NODE}`, '1');
            try {
                const drained = await api('GET', '/health');
                assert.equal(drained.body.nodes.find((n) =>
                    n.node === STACK_NODE).draining, true);
            } finally {
                await undrain(STACK_NODE);
            }
        });
});

describe('schema version', () => {
    test('test_a_schema_mismatch_is_one_503_naming_both_and_one_log_line',
        async () => {
            const bumped = '999_integration_test';
            await sql('INSERT INTO schema_migrations (version) VALUES ($1)',
                [bumped]);
            let nginx2;
            try {
                await mismatchAnswered(nginx2 = await startNginx(NGINX2_PORT),
                    bumped);
                // migrated (here: restored), it serves again without a
                // restart
                assert.ok(await eventually(async () => (await api('GET',
                    `${nginx2.api}/me`, { token: w.coordinator.token }))
                    .status === 200, 10000, 200), 'served again');
            } finally {
                await sql('DELETE FROM schema_migrations WHERE version = $1',
                    [bumped]);
                // whatever failed: the next files need this port
                await nginx2?.stop();
            }
        });
});

// What a fresh nginx answers while the database's schema is `bumped`; it
// reads the version when it connects, and answers 503 service-unavailable
// until its revocations feed has synced.  Restores the version.
async function mismatchAnswered(nginx2, bumped) {
    let res;
    try {
        assert.ok(await eventually(async () => {
            res = await api('GET', `${nginx2.api}/me`,
                { token: w.coordinator.token });
            return res.status === 503
                && res.body?.type?.endsWith(':schema-mismatch');
        }, 10000, 200), 'the API refuses');
        assertProblem(res, 503, 'schema-mismatch');
        assert.match(res.body.detail, /\b999\b/);
        assert.match(res.body.detail, new RegExp(`\\b${MODULE_SCHEMA}\\b`));
        const other = await api('POST', `${nginx2.api}/sessions`,
            { token: w.coordinator.token, body: { kind: 'telehealth' } });
        assertProblem(other, 503, 'schema-mismatch');

        const health = await api('GET', `${nginx2.api}/health`);
        assert.equal(health.status, 503);
        assert.deepEqual(health.body.schema, { module: MODULE_SCHEMA,
            database: '999', ok: false });

        const log = fs.readFileSync(path.join(nginx2.dir, 'logs',
            'error.log'), 'utf8').split('\n')
            .filter((l) => l.includes('database schema is version'));
        assert.equal(log.length, 1, log.join('\n'));
        assert.match(log[0], /\[alert\].*version 999 but this module needs/);
    } finally {
        await sql('DELETE FROM schema_migrations WHERE version = $1',
            [bumped]);
    }
}

describe('access log', () => {
    test('test_access_log_is_json_without_query_strings', async () => {
        const marker = `secret.${Date.now()}@example.org`;
        await api('GET', `/sessions?email=${encodeURIComponent(marker)}`,
            { token: w.coordinator.token });
        const file = path.join(env.run, 'nginx', 'logs', 'access.log');
        let line;
        assert.ok(await eventually(async () => {
            const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
            line = lines.reverse().find((l) => l.includes('"/api/v1/sessions"'));
            return line !== undefined;
        }, 5000, 100));
        const entry = JSON.parse(line);
        assert.equal(entry.uri, '/api/v1/sessions');
        assert.equal(typeof entry.status, 'number');
        const whole = fs.readFileSync(file, 'utf8');
        assert.ok(!whole.includes(marker.split('@')[0]),
            'no query string in the log');
    });
});
