/*
 * One person in a telehealth room, through Janus' own janus.js (the global
 * Janus) and janus.plugin.telehealth (docs/plugin.md):
 *
 *   join handle        join with the credential, publish camera and
 *                      microphone (and a screen share) with a JSEP offer,
 *                      configure, leave
 *   subscriber handle  subscribe with a one-time token the join handle
 *                      asked for ("subscribe_token": receiving is bound
 *                      to our joined handle); every offer the plugin
 *                      sends ("subscribed", "updated") is answered with
 *                      "start"
 *
 * When the connection to Janus is lost (the WebSocket closed, the Janus
 * session destroyed, the media server died) after we were in the room, the
 * call rejoins by itself for up to a minute, with backoff and a fresh
 * credential (opts.freshGrant; a guest, who has none, reuses its own while
 * it is valid).  The room may be on another media server by then: nginx's
 * grant names the server, and the plugin moves a room whose host died
 * (docs/lifecycle.md).  A room that closed is not rejoined.
 *
 * No DOM here: the page passes callbacks (console.js).
 */
"use strict";

let janusReady = null;

function janusInit() {
    if (!janusReady) {
        janusReady = new Promise((resolve) => Janus.init({
            debug: false, callback: resolve,
        }));
    }
    return janusReady;
}

/* A plugin error event or a janus.js error as one sentence. */
function callError(e) {
    if (e && e.error_code) return e.error + " (" + e.error_code + ")";
    if (e && e.message) return e.message;
    return String(e);
}

const LEFT_TEXT = {
    leave: "You left the call.",
    replaced: "You joined this call from another window.",
    removed: "You were removed from the call.",
    turned_away: "You were not let in.",
    hangup: "Your connection to the call dropped.",
};

const CLOSED_TEXT = {
    chair_left: "The call has ended: the clinician left.",
    caregiver_hung_up: "The call has ended: the caregiver hung up.",
    closed_by_chair: "The call has been ended.",
    kept_open: "The call has ended. The session stays open for later.",
    duration_limit: "The call has reached its time limit.",
    expired: "The call has ended: nobody was in it.",
    node_lost: "The call has ended: the connection to it was lost.",
};

/* How long a lost connection is retried, and the waits in between. */
const REJOIN_FOR_MS = 60000;
const REJOIN_FIRST_WAIT_MS = 1000;
const REJOIN_MAX_WAIT_MS = 8000;

/*
 * Join refusals that another try would not change: closed (486), revoked
 * (484), banned (477), in another session (476), the credential expired
 * (481, a guest's), no such room (485), access (475).  Anything else (the
 * old host's heartbeat not yet lapsed, 491; Redis, 489) is tried again.
 */
const FINAL_JOIN_ERRORS = new Set([475, 476, 477, 481, 484, 485, 486]);

/* The join credential's claims (kind, role ...), read only to decide what
 * the page shows; the plugin checks the signature. */
function credentialClaims(credential) {
    try {
        const part = String(credential).split(".")[1]
            .replace(/-/g, "+").replace(/_/g, "/");
        return JSON.parse(atob(part)) || {};
    } catch (e) {
        return {};
    }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class TelehealthCall {
    /*
     * opts.server      Janus WebSocket URL
     * opts.grant       answer of POST /sessions/{id}/join
     * opts.freshGrant  () => Promise of a new grant (a credential lives 60 s)
     * opts.audioOnly   a voice call: the microphone only, no camera
     * opts.on          callbacks, all optional:
     *   status(text)               what is happening, for people
     *   error(text)                something failed, shown to the user
     *   joined(selfId, role)
     *   participants(list)         the room's list, self included
     *   localTrack(track, on)      own camera and microphone
     *   remoteTrack(t)             {mid, track, on, participant, description}
     *   remoteStreams(streams)     the subscriber's streams list (mid ...)
     *   media(state)               {publishing, audioMuted, videoPaused,
     *                               sharing, canShare, canSwitchCamera}
     *   ended(reason, text)        out of the room; the call object is done
     */
    constructor(opts) {
        this.server = opts.server;
        this.grant = opts.grant;
        this.freshGrant = opts.freshGrant;
        this.audioOnly = !!opts.audioOnly;
        this.cameraCount = 0;
        this.on = opts.on || {};
        this.janus = null;
        this.pub = null;            /* join handle */
        this.sub = null;            /* subscriber handle */
        this.selfId = null;
        this.role = null;
        this.kind = credentialClaims(this.grant.credential).kind || null;
        this.breakout = null;       /* null: the main room (a group's) */
        this.participants = [];
        this.streams = new Map();   /* subscriber mid -> stream entry */
        this.publishing = false;
        this.audioMuted = false;
        this.videoPaused = false;
        this.micTrack = null;
        this.cameraTrack = null;
        this.screenTrack = null;
        this.screenMid = null;
        this.addingScreen = false;
        this.done = false;
        this.reconnecting = false;
        this.joinWait = null;       /* {resolve, reject} of a rejoin */
        this.tokenWait = null;      /* {resolve, reject} of a token */
    }

    emit(name, ...args) {
        if (typeof this.on[name] === "function") this.on[name](...args);
    }

    async start() {
        await janusInit();
        if (!Janus.isWebrtcSupported()) {
            throw new Error("This browser cannot make video calls (no WebRTC).");
        }
        this.emit("status", "Connecting to the room...");
        await this.connect();
    }

    /*
     * A Janus session, the join handle and the join request.  The answer
     * comes to onJoinMessage; the promise waits for it only for a rejoin
     * (joinWait), which must know whether to try again.
     */
    async connect(rejoin = false) {
        let connected = false;
        const janus = await new Promise((resolve, reject) => {
            const j = new Janus({
                server: this.server,
                success: () => { connected = true; resolve(j); },
                error: (e) => {
                    if (!connected) return reject(new Error(
                        "Could not connect to the room: " + callError(e)));
                    if (this.janus !== j) return;
                    /* lost again before a rejoin was answered */
                    if (this.joinWait) {
                        return this.joinWaitDone(new Error(callError(e)));
                    }
                    this.connectionLost();
                },
            });
        });
        this.janus = janus;
        this.pub = await this.attach({
            onmessage: (msg, jsep) => this.onJoinMessage(msg, jsep),
            onlocaltrack: (track, on) => this.onLocalTrack(track, on),
            webrtcState: (up) => {
                if (!up && this.publishing && !this.done) {
                    this.emit("status", "Your camera and microphone are no "
                        + "longer reaching the room.");
                }
            },
        });
        const answered = rejoin ? new Promise((resolve, reject) => {
            this.joinWait = { resolve, reject };
        }) : null;
        this.pub.send({
            message: { request: "join", credential: this.grant.credential,
                       audio_only: this.audioOnly },
            error: (e) => {
                if (this.joinWait) return this.joinWaitDone(e);
                this.fail("Could not join: " + callError(e));
            },
        });
        return answered;
    }

    joinWaitDone(error) {
        const w = this.joinWait;
        this.joinWait = null;
        if (error) w.reject(error); else w.resolve();
    }

    /*
     * The connection to Janus is gone while we were in the room: let go of
     * what was left of it (no request reaches that server any more) and
     * rejoin, with backoff, for REJOIN_FOR_MS.
     */
    async connectionLost() {
        if (this.done || this.reconnecting) return;
        if (!this.selfId) {
            this.end("connection", "The connection to the room was lost.");
            return;
        }
        this.reconnecting = true;
        this.dropConnection();
        this.emit("remoteStreams", []);
        this.emitMedia();
        const until = Date.now() + REJOIN_FOR_MS;
        let wait = REJOIN_FIRST_WAIT_MS;
        while (!this.done) {
            this.emit("status", "Reconnecting…");
            try {
                if (this.freshGrant) this.grant = await this.freshGrant();
                if ((this.grant.janus_url || this.grant.janus_path)
                    && typeof janusServer === "function") {
                    this.server = janusServer(this.grant.janus_url
                        || this.grant.janus_path);
                }
                await this.connect(true);
                this.reconnecting = false;
                return;
            } catch (e) {
                this.dropConnection();
                /* The room ended, or the API says no (e.g. 409 room not
                 * open): trying again would not help. */
                const final = (e && FINAL_JOIN_ERRORS.has(e.error_code))
                    || (e && e.status >= 400 && e.status < 500
                        && e.status !== 408 && e.status !== 429);
                if (final || Date.now() + wait > until) {
                    this.reconnecting = false;
                    this.end("connection", final && (e.error || e.detail)
                        || "The connection to the room was lost.");
                    return;
                }
                await sleep(wait);
                wait = Math.min(wait * 2, REJOIN_MAX_WAIT_MS);
            }
        }
    }

    /* Forgets the Janus session and its handles without a word to the
     * server (it is gone); the camera and microphone are released. */
    dropConnection() {
        const janus = this.janus;
        this.janus = null;
        for (const h of [this.pub, this.sub]) {
            try {
                if (h) h.hangup(false);
            } catch (e) { /* already gone */ }
        }
        this.pub = null;
        this.sub = null;
        this.joinWait = null;
        this.tokenWait = null;
        this.publishing = false;
        this.screenMid = null;
        this.screenTrack = null;
        this.streams.clear();
        try {
            if (janus) janus.destroy({ cleanupHandles: false,
                                       notifyDestroyed: false });
        } catch (e) { /* already gone */ }
    }

    attach(callbacks) {
        return new Promise((resolve, reject) => this.janus.attach({
            plugin: this.grant.plugin || "janus.plugin.telehealth",
            success: resolve,
            error: (e) => reject(new Error(callError(e))),
            ...callbacks,
        }));
    }

    fail(text) {
        this.emit("error", text);
    }

    /* ------------------------------------------------- the join handle */

    onJoinMessage(msg, jsep) {
        if (msg.error_code && this.joinWait) {
            this.joinWaitDone(msg);
            return;
        }
        if (msg.error_code && this.tokenWait) {
            this.tokenDone(msg, null);
            return;
        }
        if (msg.error_code) {
            this.fail(callError(msg));
            if (!this.selfId) this.end("refused", msg.error);
            return;
        }
        switch (msg.telehealth) {
        case "joined":
            if (this.joinWait) this.joinWaitDone(null);
            this.selfId = msg.id;
            this.role = msg.role;
            this.setParticipants(msg.participants);
            this.emit("joined", msg.id, msg.role);
            if (msg.state === "waiting") {
                /* No media in or out until a chair admits us. */
                this.emit("status", "Please wait: you will be let in "
                    + "shortly.");
                break;
            }
            this.emit("status", "You are in the room.");
            /* a rejoin keeps what the person had set */
            if (this.audioMuted || this.videoPaused) this.configure();
            this.startMedia();
            break;
        case "subscribe_token":
            if (this.tokenWait) this.tokenDone(null, msg.token);
            break;
        case "admitted":
            this.setParticipants(msg.participants);
            this.emit("status", "You have been let in.");
            this.startMedia();
            break;
        case "waiting":
            this.emit("status", (msg.participant && msg.participant.display
                || "Someone") + " is waiting to be let in.");
            break;
        case "muted":
            this.emit("status", msg.audio_muted_by_chair
                || msg.video_muted_by_chair
                ? "The chair has muted your "
                  + [msg.audio_muted_by_chair && "microphone",
                     msg.video_muted_by_chair && "camera"]
                      .filter(Boolean).join(" and ") + "."
                : "The chair has unmuted you.");
            break;
        case "moved":
            this.breakout = msg.breakout || null;
            this.emit("status", movedText(this.breakout));
            this.emit("moved", this.breakout);
            break;
        case "ok":
            this.emit("answered", msg);
            break;
        case "role":
            this.role = msg.role;
            this.emit("status", "Your role is now " + msg.role + ".");
            this.emitMedia();
            break;
        case "hung_up":
        case "warning":
            this.emit("status", msg.message || (msg.reason === "duration_limit"
                ? "The call ends in " + Math.ceil(msg.seconds_left / 60)
                  + " minutes." : "Notice: " + msg.reason));
            break;
        case "participants":
            this.setParticipants(msg.participants);
            break;
        case "configured":
            this.updateSelf({ audio_muted: msg.audio_muted,
                              video_paused: msg.video_paused });
            break;
        case "published":
            if (jsep) this.pub.handleRemoteJsep({ jsep });
            this.publishing = true;
            this.emitMedia();
            break;
        case "unpublished":
            this.publishing = false;
            this.emitMedia();
            break;
        case "left":
            /* the caregiver hanging up on a visit: "over" for good */
            this.end("left:" + msg.reason, msg.message
                || LEFT_TEXT[msg.reason] || "You left the call.");
            break;
        case "closed":
            this.end("closed:" + msg.reason, CLOSED_TEXT[msg.reason]
                || "The call has ended.");
            break;
        }
    }

    startMedia() {
        this.subscribe().catch((e) => this.fail(
            "Could not receive the others' video: " + callError(e)));
        if (this.role !== "viewer") {
            this.publish().catch((e) => this.fail(
                "Could not send your camera and microphone: "
                + callError(e)));
        }
    }

    setParticipants(list) {
        this.participants = list || [];
        /* a rejoin keeps a breakout move: the list says where we are */
        const me = this.participants.find((p) => p.id === this.selfId);
        if (me && (me.breakout || null) !== this.breakout) {
            this.breakout = me.breakout || null;
            this.emit("moved", this.breakout);
        }
        this.emit("participants", this.participants);
    }

    updateSelf(flags) {
        const me = this.participants.find((p) => p.id === this.selfId);
        if (me) Object.assign(me, flags);
        this.emit("participants", this.participants);
    }

    onLocalTrack(track, on) {
        if (track.kind === "audio") {
            this.micTrack = on ? track : null;
            if (on) track.enabled = !this.audioMuted;
        } else if (on && this.addingScreen) {
            this.screenTrack = track;
        } else if (on) {
            this.cameraTrack = track;
            track.enabled = !this.videoPaused;
        } else if (track === this.screenTrack) {
            /* ended from the browser's own "Stop sharing" button */
            if (!this.done && this.screenMid) {
                this.stopScreen().catch((e) => this.fail(callError(e)));
            }
            return;
        }
        this.emit("localTrack", track, on);
    }

    offer(tracks) {
        return new Promise((resolve, reject) => this.pub.createOffer({
            tracks, success: resolve, error: reject,
        }));
    }

    /* Which video m-line is what, so the others can tell them apart. */
    descriptions() {
        const pc = this.pub.webrtcStuff.pc;
        const out = [];
        for (const t of pc.getTransceivers()) {
            const track = t.sender && t.sender.track;
            if (!track || track.kind !== "video" || t.mid === null) continue;
            const screen = track === this.screenTrack;
            if (screen) this.screenMid = t.mid;
            out.push({ mid: t.mid, description: screen ? "screen" : "camera" });
        }
        return out;
    }

    sendPublish(jsep) {
        return new Promise((resolve, reject) => this.pub.send({
            message: { request: "publish", descriptions: this.descriptions() },
            jsep,
            success: resolve,
            error: (e) => reject(new Error(callError(e))),
        }));
    }

    async publish() {
        const mic = { type: "audio", capture: true, recv: false };
        let jsep;
        if (this.audioOnly) {
            /* A voice call: the microphone alone. */
            jsep = await this.offer([mic]);
        } else {
            try {
                jsep = await this.offer([
                    mic, { type: "video", capture: true, recv: false },
                ]);
            } catch (e) {
                /* No camera (or it is refused): the microphone alone. */
                this.fail("Camera unavailable (" + callError(e)
                    + "); joining with the microphone only.");
                jsep = await this.offer([mic]);
            }
            this.cameraCount = (await this.cameras().catch(() => [])).length;
        }
        await this.sendPublish(jsep);
    }

    /* The device's cameras (a phone's front and back). */
    async cameras() {
        if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices)
            return [];
        const all = await navigator.mediaDevices.enumerateDevices();
        return all.filter((d) => d.kind === "videoinput");
    }

    /* Switches to the device's next camera (front/back) on the same m-line. */
    async switchCamera() {
        const cams = await this.cameras();
        if (cams.length < 2 || !this.cameraTrack) return;
        const current = this.cameraTrack.getSettings().deviceId;
        const next = cams[(cams.findIndex((c) => c.deviceId === current) + 1)
                          % cams.length];
        const pc = this.pub.webrtcStuff && this.pub.webrtcStuff.pc;
        const tr = pc && pc.getTransceivers().find(
            (t) => t.sender && t.sender.track === this.cameraTrack);
        await new Promise((resolve, reject) => this.pub.replaceTracks({
            tracks: [{ type: "video", mid: tr ? tr.mid : undefined,
                       capture: { deviceId: { exact: next.deviceId } } }],
            success: resolve, error: reject,
        }));
        this.emitMedia();
    }

    /* Mute: the others see the flag and the microphone sends silence. */
    setAudioMuted(muted) {
        if (this.micTrack) this.micTrack.enabled = !muted;
        this.audioMuted = muted;
        this.configure();
    }

    /* Video pause: the camera sends black frames, the flag says why. */
    setVideoPaused(paused) {
        if (this.cameraTrack) this.cameraTrack.enabled = !paused;
        this.videoPaused = paused;
        this.configure();
    }

    configure() {
        /* while reconnecting there is no handle: the rejoin sends it */
        if (this.pub) {
            this.pub.send({
                message: { request: "configure", audio_muted: this.audioMuted,
                           video_paused: this.videoPaused },
                error: (e) => this.fail(callError(e)),
            });
        }
        this.emitMedia();
    }

    /* A chair's request on the join handle (docs/plugin.md, "Room
     * semantics"); everyone gets the new participants list, a refusal
     * comes back as an error event. */
    moderate(request, fields) {
        if (!this.pub || this.done) return;
        this.pub.send({
            message: { request, ...fields },
            error: (e) => this.fail(callError(e)),
        });
    }

    canShare() {
        return (this.role === "chair" || this.role === "broadcaster")
            && !!(navigator.mediaDevices
                  && navigator.mediaDevices.getDisplayMedia);
    }

    /* Screen share: a second video m-line; the publish is renegotiated. */
    async startScreen() {
        this.addingScreen = true;
        let jsep;
        try {
            jsep = await this.offer([
                { type: "screen", capture: true, recv: false, add: true },
            ]);
        } finally {
            this.addingScreen = false;
        }
        await this.sendPublish(jsep);
        this.emitMedia();
    }

    async stopScreen() {
        const mid = this.screenMid;
        this.screenMid = null;
        const ended = this.screenTrack;
        this.screenTrack = null;
        if (ended) this.emit("localTrack", ended, false);
        if (!mid) return;
        const jsep = await this.offer([
            { type: "screen", remove: true, recv: false, mid },
        ]);
        await this.sendPublish(jsep);
        this.emitMedia();
    }

    emitMedia() {
        this.emit("media", {
            publishing: this.publishing, audioMuted: this.audioMuted,
            videoPaused: this.videoPaused, sharing: !!this.screenMid,
            canShare: this.canShare(), hasCamera: !!this.cameraTrack,
            canSwitchCamera: this.cameraCount > 1 && !!this.cameraTrack,
        });
    }

    /* ------------------------------------------- the subscriber handle */

    /* Receiving is bound to our joined handle: it asks for a one-time
     * token, which the subscriber handle spends (docs/plugin.md). */
    subscribeToken() {
        return new Promise((resolve, reject) => {
            this.tokenWait = { resolve, reject };
            this.pub.send({
                message: { request: "subscribe_token" },
                error: (e) => this.tokenDone(e, null),
            });
        });
    }

    tokenDone(error, token) {
        const w = this.tokenWait;
        this.tokenWait = null;
        if (!w) return;
        if (error) w.reject(error); else w.resolve(token);
    }

    async subscribe() {
        const token = await this.subscribeToken();
        this.sub = await this.attach({
            onmessage: (msg, jsep) => this.onSubscriberMessage(msg, jsep),
            onremotetrack: (track, mid, on) => this.emit("remoteTrack", {
                track, mid, on, ...(this.streams.get(mid) || {}),
            }),
        });
        this.sub.send({
            message: { request: "subscribe", token },
            error: (e) => this.fail(callError(e)),
        });
    }

    onSubscriberMessage(msg, jsep) {
        if (msg.error_code) {
            this.fail(callError(msg));
            return;
        }
        switch (msg.telehealth) {
        case "subscribed":
        case "updated":
            this.streams.clear();
            for (const s of msg.streams || []) this.streams.set(s.mid, s);
            this.emit("remoteStreams", [...this.streams.values()]);
            if (jsep) this.answer(jsep);
            break;
        case "unsubscribed":
            this.streams.clear();
            this.emit("remoteStreams", []);
            if (msg.reason === "hangup" && !this.done) this.resubscribe();
            break;
        }
    }

    answer(jsep) {
        this.sub.createAnswer({
            jsep,
            tracks: [],     /* receive only: capture nothing here */
            success: (answer) => this.sub.send({
                message: { request: "start" }, jsep: answer,
                error: (e) => this.fail(callError(e)),
            }),
            error: (e) => this.fail("Could not receive the others' video: "
                + callError(e)),
        });
    }

    /* The receiving PeerConnection dropped: a new handle, a new token. */
    async resubscribe() {
        try {
            const old = this.sub;
            this.sub = null;
            if (old) old.detach();
            await this.subscribe();
        } catch (e) {
            this.fail("Could not receive the others' video: " + callError(e));
        }
    }

    /* ---------------------------------------------------------- leaving */

    leave() {
        if (this.done) return;
        if (!this.pub || !this.selfId) {
            this.end("left:leave", "You left the call.");
            return;
        }
        this.pub.send({ message: { request: "leave" } });
        /* Whatever happens to the answer, we are gone in 3 s. */
        setTimeout(() => this.end("left:leave", "You left the call."), 3000);
    }

    end(reason, text) {
        if (this.done) return;
        this.done = true;
        const janus = this.janus;
        this.janus = null;
        if (janus) janus.destroy({ cleanupHandles: true });
        this.emit("ended", reason, text);
    }
}

window.TelehealthCall = TelehealthCall;
