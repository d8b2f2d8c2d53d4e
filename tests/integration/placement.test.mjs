// Room placement over several Janus nodes (docs/redis.md, "Nodes and
// placement"): each node registers its public URL and load with its
// heartbeat; the join answer names the least-loaded live node that takes
// rooms, and the participant who joins through that URL gets in.  A node
// drained by its setting or by a drain mark in Redis gets no new room and
// keeps the calls it hosts.  Three extra Janus nodes run on their own
// ports; the stack's own node is drained for the test and undrained after.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    api, assertStatus, closeDb, createWorld, eventually, isPluginError,
    joinCredential, joinRoom, loginAll, redis, roomKey, startJanus, undrain,
} from './lib.mjs';

const PORT_A = Number(process.env.TH_JANUS2_PORT || 61082);
const PORT_B = Number(process.env.TH_JANUS3_PORT || 61083);
const PORT_C = Number(process.env.TH_JANUS4_PORT || 61084);
const ERR_WRONG_NODE = 491;

let w;
let a;
let b;
let c;
let stackNodes = [];
const conns = [];

const nodeKey = (id) => `th:node:${id}`;
const drainKey = (id) => `th:drain:${id}`;

// A node's jcfg with its public URL (and the drain setting).
function startNode(port, label, draining = false) {
    const base = `http://127.0.0.1:${port}/janus`;
    return startJanus(port, `it-place-${label}-${process.pid}`,
        (name, text) => name !== 'janus.plugin.telehealth.jcfg' ? text
            : text.replace(/general: \{/, `general: {\n\tpublic_url = "${base}"`
                + (draining ? '\n\tdraining = true' : '')));
}

async function join(credential, base) {
    const conn = await joinRoom(credential, base);
    conns.push(conn);
    assert.ok(!isPluginError(conn.answer.data),
        `joined at ${base}: ${JSON.stringify(conn.answer.data)}`);
    return conn;
}

async function create(name) {
    const res = await api('POST', '/sessions', { token: w.coordinator.token,
        body: { kind: 'telehealth', name } });
    assertStatus(res, 201, 'POST /sessions');
    return res.body;
}

async function nodeFields(id) {
    const flat = (await redis('HGETALL', nodeKey(id))).split('\n');
    const h = {};
    for (let i = 0; i + 1 < flat.length; i += 2) {
        h[flat[i]] = flat[i + 1];
    }
    return h;
}

// Until a heartbeat shows these participants and no pending placement.
async function settled(node, participants) {
    const ok = await eventually(async () => {
        const h = await nodeFields(node.nodeId);
        return h.participants === String(participants) && h.pending === '0';
    }, 10000, 200);
    assert.ok(ok, `${node.nodeId} reports ${participants} participants: `
        + JSON.stringify(await nodeFields(node.nodeId)));
}

before(async () => {
    w = await createWorld('placement');
    await loginAll([w.admin, w.coordinator, w.clinician, w.unassigned]);
    // the stack's node (and any other live one) takes no rooms meanwhile
    stackNodes = (await redis('SMEMBERS', 'th:nodes')).split('\n')
        .filter((id) => id !== '');
    for (const id of stackNodes) {
        await redis('SET', drainKey(id), '1');
    }
    [a, b, c] = await Promise.all([startNode(PORT_A, 'a'),
        startNode(PORT_B, 'b'), startNode(PORT_C, 'c', true)]);
});

after(async () => {
    await Promise.all(conns.map((x) => x.session.destroy().catch(() => {})));
    for (const id of stackNodes) {
        await undrain(id);
    }
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await closeDb();
});

describe('placement on the least-loaded node', () => {
    test('test_nodes_register_url_and_load_with_their_heartbeat', async () => {
        for (const n of [a, b, c]) {
            assert.ok(await eventually(async () =>
                (await redis('SISMEMBER', 'th:nodes', n.nodeId)) === '1',
            10000, 200), `${n.nodeId} is in the registry`);
            const h = await nodeFields(n.nodeId);
            assert.equal(h.url, n.base);
            for (const f of ['rooms', 'participants', 'streams', 'cpu',
                'publishers', 'subscribers', 'heartbeat_at']) {
                assert.match(h[f] ?? '', /^\d+$/, `${f} of ${n.nodeId}`);
            }
            assert.equal(h.draining, n === c ? '1' : '0');
        }
    });

    test('test_rooms_go_to_the_least_loaded_node_and_a_drained_one_gets_none',
        async () => {
            // load: three people in one room on A, one on B, none on C
            const loadA = await create('load a');
            for (const p of [w.coordinator, w.admin, w.clinician]) {
                const cred = await joinCredential(p.token, loadA.id);
                await join(cred.body.credential, a.base);
            }
            const loadB = await create('load b');
            const credB = await joinCredential(w.unassigned.token, loadB.id);
            await join(credB.body.credential, b.base);
            await settled(a, 3);
            await settled(b, 1);
            await settled(c, 0);

            const placed = [];
            for (let i = 0; i < 3; i++) {
                const s = await create(`placed ${i}`);
                const res = await joinCredential(w.coordinator.token, s.id);
                assertStatus(res, 200, 'join credential');
                assert.equal(res.body.janus_path, '/janus',
                    'the path stays for single-node pages');
                placed.push({ s, grant: res.body });
            }
            const nodes = placed.map((p) => p.grant.node);
            console.log(`# placement: loads A=3 B=1 C=0 (drained), stack `
                + `node drained; 3 new rooms went to ${nodes.map((n) =>
                    n === a.nodeId ? 'A' : n === b.nodeId ? 'B' : n)
                    .join(', ')}`);
            assert.equal(nodes[0], b.nodeId, 'the first room goes to B');
            for (const p of placed) {
                assert.ok([a.nodeId, b.nodeId].includes(p.grant.node),
                    `never the drained ones: ${p.grant.node}`);
                assert.equal(p.grant.janus_url,
                    p.grant.node === a.nodeId ? a.base : b.base);
            }
            assert.ok(nodes.filter((n) => n === b.nodeId).length
                >= nodes.filter((n) => n === a.nodeId).length,
            'B, the less loaded, gets at least as many as A');

            // a participant joins through the named URL, and that node
            // hosts the room
            const first = placed[0];
            await join(first.grant.credential, first.grant.janus_url);
            assert.equal(await redis('HGET', roomKey(first.s.room), 'node'),
                b.nodeId);

            // everyone else of that room is sent to its host
            const again = await joinCredential(w.admin.token, first.s.id);
            assert.equal(again.body.node, b.nodeId);
            await join(again.body.credential, again.body.janus_url);
        });

    test('test_a_drained_node_refuses_a_new_room_but_keeps_its_calls',
        async () => {
            // C drains by its setting: a new room there is refused
            const s = await create('direct to c');
            const cred = await joinCredential(w.coordinator.token, s.id);
            const conn = await joinRoom(cred.body.credential, c.base);
            conns.push(conn);
            assert.equal(conn.answer.data.error_code, ERR_WRONG_NODE,
                JSON.stringify(conn.answer.data));

            // a drain mark on B: new rooms go elsewhere, B's room goes on
            const hosted = await create('hosted by b');
            const chair = await joinCredential(w.coordinator.token,
                hosted.id);
            await join(chair.body.credential, b.base);
            await redis('SET', drainKey(b.nodeId), '1');
            try {
                assert.ok(await eventually(async () =>
                    (await nodeFields(b.nodeId)).draining === '1',
                10000, 200), 'B reports draining with its next heartbeat');
                const fresh = await create('after the drain');
                const res = await joinCredential(w.coordinator.token,
                    fresh.id);
                assert.equal(res.body.node, a.nodeId,
                    'the only node that takes rooms');
                const more = await joinCredential(w.admin.token, hosted.id);
                assert.equal(more.body.node, b.nodeId,
                    'the drained host keeps its room');
                await join(more.body.credential, more.body.janus_url);
            } finally {
                await undrain(b.nodeId);
            }
        });
});
