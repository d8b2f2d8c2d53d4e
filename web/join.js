/*
 * The page an invite link opens (/join#t=<token>, docs/api.md "Invites"):
 * the guest gives a name, POST /invites/redeem answers a join grant, and
 * call.js (TelehealthCall) does the rest.  The token rides in the URL
 * fragment so that no access log sees it; it is taken from there at once
 * and the address bar is cleaned.
 *
 * A link of a group that has not started registers its holder instead
 * (202, docs/api.md "Group registration"): the page says so, with the
 * scheduled time, and keeps the link (and the form) for when it starts.
 */
"use strict";

const $ = (id) => document.getElementById(id);

const inviteToken = new URLSearchParams(location.hash.slice(1)).get("t");
history.replaceState(null, "", location.pathname + location.search);

let call = null;
let messages = null;     /* the chat's event stream while in the call */
const people = new ParticipantList($("participants"), null);
const tiles = new RemoteTiles($("videos"), (id) => people.nameOf(id),
    captionOf);

function showProblem(problem) {
    const el = $("problem");
    el.textContent = !problem ? "" : typeof problem === "string" ? problem
        : problem.detail || problem.title || problem.message || String(problem);
    el.hidden = !problem;
}

async function redeem(displayName) {
    let res;
    try {
        res = await fetch("/api/v1/invites/redeem", {
            method: "POST",
            headers: { "Accept": "application/json",
                       "Content-Type": "application/json" },
            body: JSON.stringify({ token: inviteToken,
                                   display_name: displayName }),
        });
    } catch (e) {
        throw { detail: "The server cannot be reached. Try again." };
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
        throw data && typeof data === "object" ? data
            : { detail: "Something went wrong (" + res.status + ")." };
    }
    if (res.status === 202 && data && data.registered) {
        return { registered: data };
    }
    return data;
}

/* Registered for a group that has not started: the API's words and when. */
function showRegistered(answer, displayName) {
    $("registered-text").textContent = answer.detail
        || "You are registered for this group session.";
    const when = answer.scheduled_at ? new Date(answer.scheduled_at) : null;
    $("registered-when").textContent = (when && !isNaN(when)
        ? "It starts " + when.toLocaleString([], { dateStyle: "full",
            timeStyle: "short" }) + ". " : "")
        + "Come back with this link then and give the same name ("
        + displayName + ").";
    $("registered").hidden = false;
}

/* ------------------------------------------------------------ the room */

function renderParticipants(list) {
    people.render(call, list);
    tiles.recaption();
}

function captionOf(tile) {
    return people.nameOf(tile.participant)
        + (tile.kind === "screen" ? "'s screen" : "");
}

function onLocalTrack(track, on) {
    if (track.kind !== "video" || (call && track === call.screenTrack)) return;
    const video = $("local-video");
    if (on) {
        video.srcObject = new MediaStream([track]);
        video.play().catch(() => {});
    } else if (video.srcObject && video.srcObject.getTracks().includes(track)) {
        video.srcObject = null;
    }
}

function setButton(id, pressed, label) {
    $(id).setAttribute("aria-pressed", pressed ? "true" : "false");
    $(id).textContent = label;
}

function setMedia(m) {
    $("mute").disabled = !m.publishing;
    $("pause-video").disabled = !m.publishing || !m.hasCamera;
    setButton("mute", !!m.audioMuted, m.audioMuted ? "Unmute" : "Mute");
    setButton("pause-video", !!m.videoPaused,
        m.videoPaused ? "Resume video" : "Pause video");
    $("local-tile").classList.toggle("paused", !!m.videoPaused);
}

function onEnded(reason, text) {
    call = null;
    /* the chat goes with the room view: so does its stream */
    if (messages) messages.close();
    messages = null;
    tiles.clear();
    $("local-video").srcObject = null;
    $("room-title").textContent = callHeading(null);
    renderParticipants([]);
    $("room-view").hidden = true;
    $("notice").textContent = text || "You left the call.";
}

async function join(displayName) {
    const grant = await redeem(displayName);
    if (grant.registered) {
        showRegistered(grant.registered, displayName);
        return;
    }
    $("registered").hidden = true;
    $("name-view").hidden = true;
    $("room-view").hidden = false;
    /* the link's access token reaches the session's chat (chat.js) */
    if (grant.access_token && grant.session_id) {
        const chat = new SessionChat($("room-chat"), "/api/v1",
            () => grant.access_token, showProblem);
        chat.open(grant.session_id).catch(showProblem);
        messages = openMessageStream("/api/v1", grant.access_token,
            (data) => chat.onEvent(data));
    }
    $("room-title").focus();
    setMedia({ publishing: false });
    /* No freshGrant: a single-use link cannot be redeemed again. */
    call = new TelehealthCall({
        server: janusServer(grant.janus_url || grant.janus_path),
        grant,
        on: {
            status: (text) => { $("room-status").textContent = text; },
            error: (text) => showProblem(text),
            participants: renderParticipants,
            moved: (breakout) => {
                $("room-title").textContent = callHeading(breakout);
            },
            localTrack: onLocalTrack,
            remoteTrack: (t) => tiles.onRemoteTrack(t),
            remoteStreams: (streams) => tiles.onRemoteStreams(streams),
            media: setMedia,
            ended: onEnded,
        },
    });
    try {
        await call.start();
    } catch (e) {
        showProblem(e);
        if (call) call.end("error", "");
    }
}

$("name-form").onsubmit = async (ev) => {
    ev.preventDefault();
    showProblem(null);
    const name = String(new FormData(ev.target).get("display_name")).trim();
    if (!name) {
        showProblem("Please enter your name.");
        return;
    }
    const button = ev.target.querySelector("button");
    button.disabled = true;
    try {
        await join(name);
    } catch (p) {
        showProblem(p);
    } finally {
        button.disabled = false;
    }
};

$("mute").onclick = () => call && call.setAudioMuted(!call.audioMuted);
$("pause-video").onclick = () => call && call.setVideoPaused(!call.videoPaused);
$("leave").onclick = () => call && call.leave();

if (!inviteToken) {
    $("name-view").hidden = true;
    showProblem("This link is not valid. Please ask for a new one.");
}
