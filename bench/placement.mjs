// Placement under load (docs/redis.md, "Nodes and placement"): two Janus
// nodes with a public URL, the stack's own node drained meanwhile; 20
// sessions of 4 participants each ask the API for join credentials and
// join where the answer says (signalling joins, no media).  Prints the
// rooms and participants per node and the spread (largest minus smallest
// count of rooms), and how many joins landed on the named node.
//
//   bench/cluster.sh placement     (BENCH_ROOMS, BENCH_PER_ROOM)

import {
    api, closeDb, createWorld, isPluginError, joinCredential, joinRoom,
    loginAll, redis, roomKey, startJanus, undrain,
} from '../tests/integration/lib.mjs';

const ROOMS = Number(process.env.BENCH_ROOMS || 20);
const PER_ROOM = Number(process.env.BENCH_PER_ROOM || 4);
const PORTS = [Number(process.env.TH_JANUS2_PORT || 61082),
    Number(process.env.TH_JANUS3_PORT || 61083)];

function startNode(port, label) {
    const base = `http://127.0.0.1:${port}/janus`;
    return startJanus(port, `bench-${label}-${process.pid}`,
        (name, text) => name !== 'janus.plugin.telehealth.jcfg' ? text
            : text.replace(/general: \{/,
                `general: {\n\tpublic_url = "${base}"`));
}

const w = await createWorld('bench-placement');
const staff = [w.coordinator, w.admin, w.clinician, w.unassigned]
    .slice(0, PER_ROOM);
await loginAll(staff);
const others = (await redis('SMEMBERS', 'th:nodes')).split('\n')
    .filter((id) => id !== '');
for (const id of others) {
    await redis('SET', `th:drain:${id}`, '1');
}
const nodes = await Promise.all(PORTS.map((p, i) => startNode(p,
    String.fromCharCode(97 + i))));
const conns = [];
const started = Date.now();
let joins = 0;
let onNamed = 0;
try {
    // wait for both heartbeats
    for (const n of nodes) {
        for (let i = 0; i < 50; i++) {
            if (await redis('EXISTS', `th:node:${n.nodeId}`) === '1') {
                break;
            }
            await new Promise((r) => setTimeout(r, 200));
        }
    }
    for (let r = 0; r < ROOMS; r++) {
        const s = await api('POST', '/sessions', { token: w.coordinator.token,
            body: { kind: 'telehealth', name: `bench ${r}` } });
        for (const p of staff) {
            const cred = await joinCredential(p.token, s.body.id);
            const conn = await joinRoom(cred.body.credential,
                cred.body.janus_url);
            conns.push(conn);
            joins++;
            if (!isPluginError(conn.answer.data)
                && await redis('HGET', roomKey(s.body.room), 'node')
                    === cred.body.node) {
                onNamed++;
            }
        }
    }
    const elapsed = Date.now() - started;
    const counts = [];
    console.log(`placement: ${ROOMS} rooms x ${PER_ROOM} participants over `
        + `${nodes.length} Janus nodes (signalling joins) in ${elapsed} ms`);
    // the heartbeat after the last join has the final load
    await new Promise((r) => setTimeout(r, 3500));
    for (const n of nodes) {
        const [rooms, participants] = (await redis('HMGET',
            `th:node:${n.nodeId}`, 'rooms', 'participants')).split('\n');
        counts.push(Number(rooms));
        console.log(`  node ${n.nodeId}: ${rooms} rooms, ${participants} `
            + 'participants');
    }
    console.log(`  spread (most rooms - fewest rooms): `
        + `${Math.max(...counts) - Math.min(...counts)}`);
    console.log(`  joins on the node the answer named: ${onNamed}/${joins}`);
} finally {
    await Promise.all(conns.map((c) => c.session.destroy().catch(() => {})));
    for (const id of others) {
        await undrain(id).catch(() => {});
    }
    await Promise.all(nodes.map((n) => n.stop()));
    await closeDb();
}
