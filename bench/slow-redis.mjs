// A slow Redis holds up only the requests that need it (docs/plugin.md,
// "Threads and failures").  A Janus node talks to Redis through a TCP
// proxy that delays every chunk it forwards to Redis by BENCH_DELAY_MS
// (200), in order; nginx talks to Redis directly.  Room A and room B are
// open on that node with one participant each.  Then, at the same moment,
// someone joins room A (the join script must run in Redis) and the
// participant of room B mutes (configure: answered from memory, its Redis
// write goes behind); right after, room B's chair mutes a second
// participant (a chair's action) and that participant leaves (their Redis
// writes go behind too, in room B's order).  Prints the latencies, over
// BENCH_ROUNDS rounds.
//
//   bench/cluster.sh slow-redis

import net from 'node:net';
import {
    JanusSession, api, closeDb, createWorld, env, joinCredential, joinRoom,
    loginAll, startJanus,
} from '../tests/integration/lib.mjs';

const DELAY_MS = Number(process.env.BENCH_DELAY_MS || 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const JANUS_PORT = Number(process.env.TH_JANUS2_PORT || 61082);
const PROXY_PORT = Number(process.env.TH_BENCH_PROXY_PORT || 62047);

// Every chunk to Redis waits DELAY_MS, in the order it came; answers pass.
function delayingProxy() {
    const server = net.createServer((client) => {
        const upstream = net.connect(Number(env.redisPort), '127.0.0.1');
        let due = 0;
        client.on('data', (chunk) => {
            due = Math.max(Date.now() + DELAY_MS, due);
            setTimeout(() => upstream.write(chunk), due - Date.now());
        });
        upstream.on('data', (chunk) => client.write(chunk));
        const end = () => { client.destroy(); upstream.destroy(); };
        client.on('error', end);
        upstream.on('error', end);
        client.on('close', end);
        upstream.on('close', end);
    });
    return new Promise((resolve) => server.listen(PROXY_PORT, '127.0.0.1',
        () => resolve(server)));
}

const timed = async (fn) => {
    const t = performance.now();
    const answer = await fn();
    return { ms: performance.now() - t, answer };
};

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const w = await createWorld('bench-slow-redis');
await loginAll([w.coordinator, w.admin, w.clinician]);
const proxy = await delayingProxy();
const node = await startJanus(JANUS_PORT, `bench-slow-${process.pid}`,
    (name, text) => name !== 'janus.plugin.telehealth.jcfg' ? text
        : text.replace(/redis = "[^"]*"/, `redis = "127.0.0.1:${PROXY_PORT}"`)
            .replace(/general: \{/, 'general: {\n\tredis_command_timeout = 5000'));
const conns = [];
const joinMs = [];
const muteMs = [];
const chairMs = [];
const leaveMs = [];
try {
    const open = async (name) => (await api('POST', '/sessions',
        { token: w.coordinator.token, body: { kind: 'telehealth', name } }))
        .body;
    const roomB = await open('room b');
    const credB = await joinCredential(w.coordinator.token, roomB.id);
    const b = await joinRoom(credB.body.credential, node.base);
    conns.push(b);
    for (let i = 0; i < ROUNDS; i++) {
        // the second participant of room B (joins through the slow Redis)
        const credC = await joinCredential(w.admin.token, roomB.id);
        const c = await joinRoom(credC.body.credential, node.base);
        conns.push(c);
        if (c.answer.data?.telehealth !== 'joined') {
            throw new Error(`room B: ${JSON.stringify(c.answer.data)}`);
        }
        const who = c.answer.data.id;
        const roomA = await open(`room a ${i}`);
        const credA = await joinCredential(w.admin.token, roomA.id);
        const session = await JanusSession.create(node.base);
        const a = { session, handle: await session.attach() };
        conns.push(a);
        // a moment later, so the join is the one in Redis
        const later = (fn) => timed(async () => {
            await new Promise((r) => setTimeout(r, 5));
            return fn();
        });
        let chair, leave;
        const [join, mute] = await Promise.all([
            timed(() => a.handle.message({ request: 'join',
                credential: credA.body.credential })),
            later(() => b.handle.message({ request: 'configure',
                audio_muted: i % 2 === 0 })),
            (async () => {
                chair = await later(() => b.handle.message({ request: 'mute',
                    participant: who, audio: true }));
                leave = await timed(() => c.handle.message(
                    { request: 'leave' }));
            })(),
        ]);
        if (join.answer.data?.telehealth !== 'joined'
            || mute.answer.data?.telehealth !== 'configured'
            || chair.answer.data?.telehealth !== 'ok'
            || leave.answer.data?.telehealth !== 'left') {
            throw new Error(`unexpected answers: ${JSON.stringify(
                [join.answer.data, mute.answer.data, chair.answer.data,
                    leave.answer.data])}`);
        }
        joinMs.push(join.ms);
        muteMs.push(mute.ms - 5);
        chairMs.push(chair.ms - 5);
        leaveMs.push(leave.ms);
    }
    console.log(`slow Redis (${DELAY_MS} ms a command for the node), `
        + `${ROUNDS} rounds:`);
    console.log(`  join in room A (needs Redis): median `
        + `${median(joinMs).toFixed(0)} ms (${joinMs.map((m) =>
            m.toFixed(0)).join(', ')})`);
    console.log(`  mute in room B at the same time: median `
        + `${median(muteMs).toFixed(1)} ms (${muteMs.map((m) =>
            m.toFixed(1)).join(', ')})`);
    const line = (what, a) => console.log(`  ${what}: median `
        + `${median(a).toFixed(1)} ms (${a.map((m) => m.toFixed(1))
            .join(', ')})`);
    line("chair's mute of another participant in room B", chairMs);
    line('that participant leaving room B, right after', leaveMs);
    console.log(`  ratio join/mute: ${(median(joinMs) / Math.max(median(muteMs),
        0.1)).toFixed(0)}`);
} finally {
    await Promise.all(conns.map((c) => c.session.destroy().catch(() => {})));
    await node.stop();
    proxy.close();
    await closeDb();
}
