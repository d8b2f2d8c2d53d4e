// A synthetic publisher in the stock VideoRoom, in a process of its own so
// that its sending rate does not depend on the load of the process that
// measures.  Used by subscribers.mjs.
//
//   node publisher.mjs ROOM
//
// Prints {"id": <feed id>} when publishing, then every 250 ms the packets
// sent so far: {"audio": n, "video": n}.  Ends when stdin closes or on
// SIGTERM, and after 20 minutes at most.

import { JanusSession, MediaPeer, env, withTimeout } from '../lib/index.mjs';

const room = Number(process.argv[2]);
const session = await JanusSession.create(env.janusHttp);
const handle = await session.attach('janus.plugin.videoroom');
const joined = await handle.request({ request: 'join', ptype: 'publisher', room, display: 'bench' });
const peer = new MediaPeer({ name: 'publisher', audio: true, video: true, direction: 'sendonly' });

// Count RTP packets written, not frames.
let videoPackets = 0;
const write = peer.video.track.writeRtp;
peer.video.track.writeRtp = (rtp) => {
  videoPackets++;
  write(rtp);
};

const { jsep } = await handle.request({ request: 'publish', audio: true, video: true }, await peer.createOffer());
await peer.acceptAnswer(jsep);
await peer.waitConnected();
peer.startMedia();
console.log(JSON.stringify({ id: joined.data.id }));
const report = setInterval(() => console.log(JSON.stringify({ audio: peer.audio.sent, video: videoPackets })), 250);

let stop;
const stopped = new Promise((resolve) => (stop = resolve));
process.stdin.on('end', stop).resume();
process.on('SIGTERM', stop);
await withTimeout(stopped, 20 * 60_000, 'publisher lifetime').catch(() => {});
clearInterval(report);
await peer.close();
await session.destroy();
process.exit(0);
