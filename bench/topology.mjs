// The topology the media benchmarks measure (bench/group.mjs, and the
// fan-out of bench/media.mjs: one publisher): P publishers (the first the
// room's moderator, the others participants, each sending camera-rate VP8
// and Opus) and R receivers subscribed to every publisher's streams, in
// janus.plugin.telehealth or the stock VideoRoom, one plugin at a time in
// one Janus, restarted before each measurement so that both start from
// the same process state.
//
// Ours: the room is a `group` session started through the API (no waiting
// room); the moderator is its creator (POST /sessions/{id}/join, chair),
// the participants and receivers redeem the session's invite link
// (POST /invites/redeem); receivers take one multistream subscription
// (`subscribe`: one m-line per publisher stream).  VideoRoom: P publishers
// and R subscribers each of one handle subscribed to all P feeds.
//
// The publishers run in this process, silent while the receivers are set
// up (then the warm-up); the receivers in ceil(R / K)
// processes (group-receivers.mjs, K = perProcess), which report their own
// CPU and event-loop delay: one Node process cannot decrypt a large
// fan-out and keep a publisher's timers on time.  After the warm-up the
// publishers pause (the streams drain), every counter is marked, they
// resume for the window, pause again at its end, and after a drain the
// receivers report: every packet sent in the window and every packet
// received of it is counted, none from either side of it.  Figures:
// - Janus CPU seconds over the window and per forwarded packet;
// - delivery of each receiver and each publisher stream: distinct RTP
//   sequence numbers received / packets the publisher sent (min and mean);
// - Janus memory per participant: growth of Janus' PSS (and RSS) from the
//   restarted, idle process to the end of the window with everyone joined
//   and media flowing, divided by the participants (P + R): every
//   participant's share of the plugin's and the core's state
//   (PeerConnections, ICE, DTLS, SRTP, NACK buffers);
// - whether the load generator kept up: publishers' packets sent against a
//   camera's rate, the processes' CPU and event-loop delay.

import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { randomInt } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

import { JanusSession, MediaPeer, env, sleep, withTimeout } from '../tests/media/lib/index.mjs';
import { Member } from '../tests/media/lib/telehealth.mjs';
import {
  VIDEOROOM, apiGroupRoom, countSent, cpuSeconds, janusPid, log, memoryKiB, restartJanus, udpDrops,
} from './lib.mjs';

/** Packets a second a camera-rate publisher sends: Opus 50 + VP8 frames. */
export const cameraRate = (video) => 50 + video.fps * video.deltaPackets;

const DRAIN_MS = 700;
// The load generator keeps up when every publisher sends at least this
// share of a camera's packets and no process of it is saturated.
export const SENT_OK = 0.95;
export const PROCESS_CPU_OK = 0.85; // CPU s/s of one receiver process
export const LOOP_P99_OK_MS = 50;

/** A receiver process: ask(cmd) -> its answer. */
function receiverProcess() {
  const child = spawn(process.execPath, [new URL('./group-receivers.mjs', import.meta.url).pathname],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const answer = JSON.parse(line);
    const w = waiting.shift();
    if (answer.error) {
      w?.reject(new Error(`receivers: ${answer.error}`));
    } else {
      w?.resolve(answer);
    }
  });
  child.on('exit', () => waiting.splice(0).forEach((w) => w.reject(new Error('receivers ended'))));
  return {
    ask: (msg, ms = 10 * 60_000) => withTimeout(new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      child.stdin.write(`${JSON.stringify(msg)}\n`);
    }), ms, `receivers ${msg.cmd}`),
    end: () => child.stdin.end(),
    pid: child.pid,
  };
}

/** Splits n into chunks of at most k. */
function chunks(n, k) {
  const out = [];
  for (let i = 0; i < n; i += k) {
    out.push(Math.min(k, n - i));
  }
  return out;
}

/** A publishing peer with its packets counted. */
function publisherPeer(name, VIDEO) {
  const peer = new MediaPeer({ name, audio: true, video: true, direction: 'sendonly', videoOptions: VIDEO });
  return { peer, sent: countSent(peer) };
}

async function roomTelehealth(cleanups, { publishers: P, receivers: R, batch: BATCH, video: VIDEO }) {
  const t = { after: (fn) => cleanups.push(fn) };
  const api = await apiGroupRoom({ capacity: P + R + 5 });
  cleanups.push(() => api.close());
  const room = { id: api.room };
  const publishers = [];
  for (let i = 0; i < P; i++) {
    const { credential } = i === 0 ? await api.chair() : await api.guest(`participant ${i}`);
    const m = await Member.join(t, room, { credential });
    const p = publisherPeer(`th-pub-${i}`, VIDEO);
    m.publisher = p.peer; // closed with the Member
    const { jsep } = await m.handle.request({ request: 'publish' }, await p.peer.createOffer());
    await p.peer.acceptAnswer(jsep);
    p.peer.startMedia();
    await p.peer.waitConnected();
    publishers.push({ id: m.id, ...p });
  }
  // Each receiver redeems the link just before it joins (a credential
  // lives 60 s, a process' set-up may take longer).
  const setup = async (count, index) => ({
    plugin: 'telehealth', room: api.room, invite: api.invite, count, batch: BATCH, prefix: `receiver ${index}.`,
  });
  return { publishers, setup, roomName: api.room };
}

async function roomVideoRoom(cleanups, { publishers: P, batch: BATCH, video: VIDEO }) {
  const session = await JanusSession.create(env.janusHttp, { requestTimeoutMs: 30_000 });
  cleanups.push(() => session.destroy().catch(() => {}));
  const room = randomInt(1, 2 ** 31);
  const admin = await session.attach(VIDEOROOM);
  await admin.request({ request: 'create', room, publishers: P, audiocodec: 'opus', videocodec: 'vp8' });
  cleanups.push(() => admin.request({ request: 'destroy', room }).catch(() => {}));
  const publishers = [];
  for (let i = 0; i < P; i++) {
    const s = await JanusSession.create(env.janusHttp);
    const h = await s.attach(VIDEOROOM);
    const joined = await h.request({ request: 'join', ptype: 'publisher', room, display: `publisher ${i}` });
    const p = publisherPeer(`vr-pub-${i}`, VIDEO);
    cleanups.push(async () => { await p.peer.close(); await s.destroy().catch(() => {}); });
    const { jsep } = await h.request({ request: 'publish', audio: true, video: true }, await p.peer.createOffer());
    await p.peer.acceptAnswer(jsep);
    await p.peer.waitConnected();
    p.peer.startMedia();
    publishers.push({ id: String(joined.data.id), ...p });
  }
  const feeds = publishers.map((p) => Number(p.id));
  const setup = async (count, index) =>
    ({ plugin: 'videoroom', room, feeds, count, batch: BATCH, prefix: `vr-recv-${index}.` });
  return { publishers, setup, roomName: String(room) };
}

const sumKinds = (s) => s.audio + s.video;

/**
 * One measurement of one plugin (the file's header says how): o is
 * { publishers, receivers, perProcess, warmupMs, windowMs, batch, video }.
 */
export async function measureTopology(plugin, o) {
  const {
    publishers: P, receivers: R, perProcess: PER_PROCESS, warmupMs: WARMUP_MS, windowMs: WINDOW_MS,
  } = o;
  const CAMERA_RATE = cameraRate(o.video);
  await restartJanus();
  await sleep(1000);
  const pid = janusPid();
  const mem0 = memoryKiB(pid);
  const cleanups = [];
  const procs = [];
  try {
    const { publishers, setup } = plugin === 'telehealth'
      ? await roomTelehealth(cleanups, o) : await roomVideoRoom(cleanups, o);
    log(`${plugin}: ${P} publishing`);
    // Quiet while the receivers are set up: their handshakes then do not
    // compete with the forwarding (on a loaded machine a peer's ICE
    // consent, 30 s in werift, could expire meanwhile).
    publishers.forEach((p) => p.peer.stopMedia());
    const sizes = chunks(R, PER_PROCESS);
    for (const [i, count] of sizes.entries()) {
      const proc = receiverProcess();
      procs.push(proc);
      await proc.ask({ cmd: 'setup', ...(await setup(count, i)) });
      log(`${plugin}: ${procs.length} receiver processes, ${sizes.slice(0, i + 1).reduce((a, b) => a + b, 0)} receivers`);
    }
    publishers.forEach((p) => p.peer.startMedia());
    await sleep(WARMUP_MS);

    // Pause, drain, mark; the window; pause, drain, count.
    publishers.forEach((p) => p.peer.stopMedia());
    await sleep(DRAIN_MS);
    const sent0 = publishers.map((p) => p.sent());
    await Promise.all(procs.map((p) => p.ask({ cmd: 'mark' })));
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const self0 = process.cpuUsage();
    const genPids = [process.pid, ...procs.map((p) => p.pid)];
    const drops0 = udpDrops([pid, ...genPids]);
    const c0 = cpuSeconds(pid);
    const t0 = performance.now();
    publishers.forEach((p) => p.peer.startMedia());
    await sleep(WINDOW_MS);
    publishers.forEach((p) => p.peer.stopMedia());
    const c1 = cpuSeconds(pid);
    const seconds = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(self0);
    loop.disable();
    const mem1 = memoryKiB(pid);
    await sleep(DRAIN_MS);
    const sent = publishers.map((p, i) => {
      const s = p.sent();
      return { audio: s.audio - sent0[i].audio, video: s.video - sent0[i].video };
    });
    const reports = await Promise.all(procs.map((p) => p.ask({ cmd: 'report' })));
    const drops1 = udpDrops([pid, ...genPids]);
    const dropped = (pids) => pids.reduce((a, p) => a + drops1[p] - drops0[p], 0);
    const all = reports.flatMap((x) => x.receivers);
    log(`${plugin}: publishers ${publishers.map((p) => p.peer.pc.connectionState).join(',')}; ` +
      `receivers not connected: ${all.filter((r) => r.state !== 'connected').length}, ` +
      `with nothing since they joined: ${all.filter((r) => r.packetsSinceStart === 0).length} of ${all.length}`);

    // Delivery of every receiver and every publisher stream.
    const deliveries = [];
    const byKind = { audio: [], video: [] };
    let received = 0;
    let duplicates = 0;
    for (const rep of reports) {
      for (const r of rep.receivers) {
        for (const [i, p] of publishers.entries()) {
          for (const kind of ['audio', 'video']) {
            const got = r.streams[`${p.id}/${kind}`];
            received += got?.unique ?? 0;
            duplicates += got?.duplicates ?? 0;
            deliveries.push((got?.unique ?? 0) / sent[i][kind]);
            byKind[kind].push((got?.unique ?? 0) / sent[i][kind]);
          }
        }
      }
    }
    const published = sent.reduce((a, s) => a + sumKinds(s), 0);
    const cpu = c1 - c0;
    const r3 = (x) => Number(x.toFixed(3));
    const result = {
      plugin,
      publishers: P,
      receivers: R,
      receiverProcesses: procs.length,
      seconds: Number(seconds.toFixed(2)),
      publishedPackets: published,
      forwardedPackets: received,
      duplicatePackets: duplicates,
      deliveryMin: Number(Math.min(...deliveries).toFixed(4)),
      deliveryMean: Number((deliveries.reduce((a, b) => a + b, 0) / deliveries.length).toFixed(4)),
      deliveryMinByKind: { audio: Number(Math.min(...byKind.audio).toFixed(4)),
        video: Number(Math.min(...byKind.video).toFixed(4)) },
      streamsBelow999: deliveries.filter((d) => d < 0.999).length,
      streams: deliveries.length,
      janusCpuSeconds: Number(cpu.toFixed(2)),
      janusCpuPerSecond: r3(cpu / seconds),
      cpuMicrosPerPacket: Number(((cpu / received) * 1e6).toFixed(2)),
      janusUdpDrops: dropped([pid]),
      // What Janus sent whether or not the generator read it: received
      // (duplicates too) and dropped at the generator's sockets; CPU per
      // such packet stays meaningful when the generator falls behind.
      janusSentPackets: received + duplicates + dropped(genPids),
      cpuMicrosPerSentPacket: Number(((cpu / (received + duplicates + dropped(genPids))) * 1e6).toFixed(2)),
      janusKiB: { before: mem0, after: mem1 },
      pssKiBPerParticipant: Number(((mem1.pss - mem0.pss) / (P + R)).toFixed(0)),
      rssKiBPerParticipant: Number(((mem1.rss - mem0.rss) / (P + R)).toFixed(0)),
      generator: {
        sentOfCameraRateMin: r3(Math.min(...sent.map(sumKinds)) / (CAMERA_RATE * seconds)),
        publisherProcessCpuPerSecond: r3((self.user + self.system) / 1e6 / seconds),
        publisherEventLoopP99Ms: Number((loop.percentile(99) / 1e6).toFixed(1)),
        receiverProcessCpuPerSecondMax: r3(Math.max(...reports.map((x) => x.cpuSeconds / x.seconds))),
        receiverProcessCpuPerSecondSum: r3(reports.reduce((a, x) => a + x.cpuSeconds / x.seconds, 0)),
        // Janus and the generator together, in cores (the machine's: cores)
        coresUsed: r3(cpu / seconds + (self.user + self.system) / 1e6 / seconds
          + reports.reduce((a, x) => a + x.cpuSeconds / x.seconds, 0)),
        cores: availableParallelism(),
        // datagrams the kernel dropped because the generator's processes
        // did not read them in time (Janus' own: janusUdpDrops)
        udpDrops: dropped(genPids),
        eventLoopP99MsMax: Number(Math.max(loop.percentile(99) / 1e6,
          ...reports.map((x) => x.eventLoopP99Ms)).toFixed(1)),
      },
    };
    const g = result.generator;
    result.generator.keptUp = g.udpDrops === 0 && g.sentOfCameraRateMin >= SENT_OK
      && g.receiverProcessCpuPerSecondMax <= PROCESS_CPU_OK && g.eventLoopP99MsMax <= LOOP_P99_OK_MS;
    log(JSON.stringify(result));
    return result;
  } finally {
    await Promise.allSettled(procs.map((p) => p.ask({ cmd: 'close' }, 60_000).finally(p.end)));
    for (const fn of cleanups.reverse()) {
      await Promise.resolve().then(fn).catch(() => {});
    }
  }
}


/**
 * One line on the load generator of several figures (each with
 * sentOfCameraRateMin, receiverProcessCpuPerSecondMax, eventLoopP99MsMax,
 * keptUp): whether their losses and CPU can be taken as Janus'.
 */
export function generatorLine(figures) {
  const min = (k) => Math.min(...figures.map((f) => f[k]));
  const max = (k) => Math.max(...figures.map((f) => f[k]));
  const sum = (k) => figures.reduce((a, f) => a + f[k], 0);
  return `load generator: publishers sent >= ${min('sentOfCameraRateMin')} of a camera's packets, ` +
    `${sum('udpDrops')} datagrams dropped at its sockets (Janus' sockets: ${sum('janusUdpDrops')}), ` +
    `busiest receiver process ${max('receiverProcessCpuPerSecondMax')} CPU s/s, ` +
    `Janus and the generator used up to ${max('coresUsed')} of ${figures[0].cores} cores, ` +
    `event-loop p99 (publishers' and receivers' processes) <= ${max('eventLoopP99MsMax')} ms: ` +
    (figures.every((f) => f.keptUp) ? 'kept up'
      : `DID NOT keep up (needs no drops, >= ${SENT_OK}, <= ${PROCESS_CPU_OK} CPU s/s, <= ${LOOP_P99_OK_MS} ms): ` +
        'losses may be the generator\'s, not Janus\'; this machine cannot run this topology faithfully');
}

/** The load generator's figures of several rounds of one plugin. */
export function generatorRounds(list) {
  return {
    sentOfCameraRateMin: Math.min(...list.map((f) => f.generator.sentOfCameraRateMin)),
    receiverProcessCpuPerSecondMax: Math.max(...list.map((f) => f.generator.receiverProcessCpuPerSecondMax)),
    eventLoopP99MsMax: Math.max(...list.map((f) => f.generator.eventLoopP99MsMax)),
    udpDrops: list.reduce((a, f) => a + f.generator.udpDrops, 0),
    coresUsed: Math.max(...list.map((f) => f.generator.coresUsed)),
    cores: list[0].generator.cores,
    janusUdpDrops: list.reduce((a, f) => a + f.janusUdpDrops, 0),
    keptUp: list.every((f) => f.generator.keptUp),
  };
}
