// Redis through Sentinel (docs/redis.md, "Production"): a primary, a
// replica and three sentinels of the test's own on loopback; a second
// nginx (telehealth_redis_sentinel) and a second Janus (redis_master,
// redis_sentinels, redis_wait_replicas = 1) find the primary through the
// sentinels.  Calls are opened and joined one after the other while the
// primary is failed over (SENTINEL FAILOVER); every answer is either right
// or a 503 / 489 while it moves, both follow the new primary without a
// restart, and every join that succeeded has its event in the new
// primary's stream, consumed by nginx into PostgreSQL.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, closeDb, createWorld, eventually, isPluginError,
    joinRoom, loginAll, sleep, sql, startJanus, startNginx,
} from './lib.mjs';
import { startRedis } from './redis-servers.mjs';

const PRIMARY_PORT = Number(process.env.TH_SENTINEL_PRIMARY_PORT || 61994);
const REPLICA_PORT = Number(process.env.TH_SENTINEL_REPLICA_PORT || 61995);
const SENTINEL_PORTS = [
    Number(process.env.TH_SENTINEL1_PORT || 61996),
    Number(process.env.TH_SENTINEL2_PORT || 61997),
    Number(process.env.TH_SENTINEL3_PORT || 61998),
];
const NGINX2_PORT = Number(process.env.TH_NGINX2_PORT || 61081);
const JANUS2_PORT = Number(process.env.TH_JANUS2_PORT || 61082);
const MASTER = 'th-it';
const ERR_UNAVAILABLE = 489;

let w;
let primary;
let replica;
const sentinels = [];
let nginx2;
let janus2;
const conns = [];

const sentinelList = () =>
    SENTINEL_PORTS.map((p) => `127.0.0.1:${p}`);

before(async () => {
    w = await createWorld('sentinel');
    await loginAll([w.admin]);
    primary = await startRedis('primary', PRIMARY_PORT);
    replica = await startRedis('replica', REPLICA_PORT,
        [`replicaof 127.0.0.1 ${PRIMARY_PORT}`]);
    const linked = await eventually(async () =>
        /master_link_status:up/.test(await replica.cli('INFO', 'replication')),
    10000);
    assert.ok(linked, 'the replica follows the primary');
    for (const port of SENTINEL_PORTS) {
        sentinels.push(await startRedis(`sentinel-${port}`, port, [
            `sentinel monitor ${MASTER} 127.0.0.1 ${PRIMARY_PORT} 2`,
            `sentinel down-after-milliseconds ${MASTER} 1000`,
            `sentinel failover-timeout ${MASTER} 10000`,
        ], { sentinel: true }));
    }
    const ready = await eventually(async () => {
        const r = await sentinels[0].cli('SENTINEL', 'CKQUORUM', MASTER);
        const replicas = await sentinels[0].cli('SENTINEL', 'REPLICAS',
            MASTER);
        return /^OK/.test(r) && replicas.includes(String(REPLICA_PORT));
    }, 20000, 200);
    assert.ok(ready, 'three sentinels agree and know the replica');

    nginx2 = await startNginx(NGINX2_PORT, (conf) => conf.replace(
        /telehealth_redis [^;]+;/,
        `telehealth_redis_sentinel ${MASTER} ${sentinelList().join(' ')};`));
    janus2 = await startJanus(JANUS2_PORT, `it-sentinel-${process.pid}`,
        (name, text) => (name !== 'janus.plugin.telehealth.jcfg' ? text
            : text.replace(/redis = "[^"]*"/, `redis_master = "${MASTER}"
	redis_sentinels = "${sentinelList().join(', ')}"
	redis_wait_replicas = 1
	redis_wait_timeout = 200`)));
});

after(async () => {
    await Promise.all(conns.map((c) => c.session.destroy().catch(() => {})));
    await janus2?.stop();
    await nginx2?.stop();
    for (const s of [...sentinels, replica, primary]) {
        await s?.remove();
    }
    await closeDb();
});

// One call: open through nginx2, credential, join on janus2.  Answers
// {stage, status} of the first step that did not succeed, or {session}.
async function oneCall(patient) {
    const open = await api('POST', `${nginx2.api}/sessions`, {
        token: w.admin.token, timeoutMs: 10000,
        body: { kind: 'video_call', patient_id: patient.id } });
    if (open.status !== 201) {
        return { stage: 'open', status: open.status, body: open.body };
    }
    const cred = await api('POST',
        `${nginx2.api}/sessions/${open.body.id}/join`,
        { token: patient.token, timeoutMs: 10000 });
    if (cred.status !== 200) {
        return { stage: 'credential', status: cred.status, body: cred.body };
    }
    const conn = await joinRoom(cred.body.credential, janus2.base);
    conns.push(conn);
    if (isPluginError(conn.answer.data)) {
        return { stage: 'join', status: conn.answer.data.error_code,
            body: conn.answer.data, session: open.body.id };
    }
    return { session: open.body.id };
}

// The XADD entries of a server's events stream: [{id, text}].
async function entriesOf(server) {
    const raw = await server.cli('XRANGE', 'th:events', '-', '+');
    const out = [];
    for (const line of raw.split('\n')) {
        if (/^\d+-\d+$/.test(line)) {
            out.push({ id: line, text: '' });
        } else if (out.length) {
            out[out.length - 1].text += `${line}\n`;
        }
    }
    return out;
}

const joinedEntry = (entries, session) => entries.find((e) =>
    e.text.includes('participant.joined')
    && e.text.includes(`\nsession\n${session}\n`));

// Calls one after the other; the 6th starts with `fail()`; goes on until
// `next` (the server that takes over) is the primary and 5 calls succeeded
// on it.  Then: only 503 / 489 while it moved, every successful join's
// event on `next` and consumed by nginx into PostgreSQL, and nginx's log
// names the new primary.
async function failOverMidRun(label, fail, next) {
    const results = [];
    let failed = false;
    let promoted = false;
    let okAfter = 0;
    const deadline = Date.now() + 60000;
    for (let i = 0; i < 60 && Date.now() < deadline; i++) {
        // a patient of their own for each call, logged in through the
        // stack's nginx, which the failover does not concern
        const patient = await addPatient(w, `${label}-${i}`);
        await loginAll([patient]);
        if (i === 5) {
            await fail();
            failed = true;
        }
        const r = await oneCall(patient);
        results.push(r);
        if (failed && !promoted) {
            promoted = (await next.cli('ROLE')).startsWith('master');
        }
        if (promoted && r.session) {
            okAfter += 1;
            if (okAfter >= 5) {
                break;
            }
        }
        if (!r.session) {
            await sleep(200);
        }
    }

    const summary = results.map((r) => (r.session ? 'ok'
        : `${r.stage}:${r.status}`)).join(' ');
    console.log(`# ${label}, call by call: ${summary}`);
    assert.ok(promoted, `${next.name} became the primary`);
    assert.ok(okAfter >= 5,
        `calls succeed again after the failover: ${summary}`);
    assert.ok(results.slice(0, 5).every((r) => r.session),
        `calls before the failover succeed: ${summary}`);
    for (const r of results.filter((x) => !x.session)) {
        if (r.stage === 'join') {
            assert.equal(r.status, ERR_UNAVAILABLE,
                `a join while it moves is 489: ${JSON.stringify(r.body)}`);
        } else {
            assert.equal(r.status, 503,
                `${r.stage} while it moves is 503: ${
                    JSON.stringify(r.body)}`);
        }
    }

    // every successful join's event is in the new primary's stream ...
    const joined = results.filter((r) => r.session).map((r) => r.session);
    const entries = await eventually(async () => {
        const es = await entriesOf(next);
        return joined.every((x) => joinedEntry(es, x)) ? es : null;
    }, 60000, 250);
    assert.ok(entries, 'each successful join has its event on the new '
        + `primary (${joined.length} joins)`);

    // ... and nginx, following the new primary, consumed it into
    // PostgreSQL
    const ids = joined.map((x) => joinedEntry(entries, x).id);
    const consumed = await eventually(async () => {
        const rows = await sql(
            'SELECT stream_id FROM processed_events '
            + 'WHERE stream_id = ANY($1)', [ids]);
        return rows.length === ids.length;
    }, 15000, 250);
    assert.ok(consumed, 'nginx consumed every event after the failover');

    const log = fs.readFileSync(
        path.join(nginx2.dir, 'logs/error.log'), 'utf8');
    assert.match(log, new RegExp(`Redis primary "${MASTER}" is at `
        + `127\\.0\\.0\\.1:${next.port}`),
    'nginx logs the new primary it follows');
}

describe('Redis through Sentinel', () => {
    test('SENTINEL FAILOVER mid-run: only 503/489 while it moves, no event lost', async () => {
        await failOverMidRun('sentinel failover', async () => {
            assert.match(await sentinels[0].cli('SENTINEL', 'FAILOVER',
                MASTER), /OK/, 'the failover starts');
        }, replica);
    });

    test('the primary killed mid-run: only 503/489 while it moves, no event lost', async () => {
        // the replica leads since the test above; the old primary follows
        const following = await eventually(async () =>
            /master_link_status:up/.test(
                await primary.cli('INFO', 'replication')), 15000, 200);
        assert.ok(following, 'the old primary is a replica of the new one');
        await failOverMidRun('primary killed', async () => {
            replica.kill('SIGKILL');
        }, primary);
    });
});
