/*
 * The reference console: log in; "My sessions" (scheduled, open and
 * recently ended, with filters) and, for staff, a new session of any kind
 * and its invites (e-mail, SMS, WhatsApp or a link; the status per
 * invitee, resend, revoke); join a session and talk: camera, microphone,
 * mute, video pause, screen share, leave, the participants list (a chair
 * moderates it, room.js); for staff, the console's events (someone
 * waiting rings, added to a session ...), the waiting room of all their
 * open sessions (waiting.js) with "Admit" and "Start next consultation",
 * on a session's invites the people a chair removed ("Let back in"), and
 * for a group its registrations ("Admit", "Admit all"); a group's chair
 * runs its breakout rooms from the participants list (breakouts.js).
 * The REST API is docs/api.md; the room is call.js (docs/plugin.md).
 * No build step, no framework.
 */
"use strict";

const API = "/api/v1";
const SESSIONS_POLL_MS = 5000;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("th.token");
let me = null;
let call = null;
let pollTimer = null;
const people = new ParticipantList($("participants"), $("waiting-room"),
    $("breakout-bar"));
const tiles = new RemoteTiles($("videos"), (id) => people.nameOf(id),
    captionOf);
/* the chat of the call, and of a session picked from the list (chat.js) */
const roomChat = new SessionChat($("room-chat"), API, () => token,
    showProblem);
const sessionChat = new SessionChat($("session-chat"), API, () => token,
    showProblem);

/* ------------------------------------------------------------ messages */

function showProblem(problem) {
    const el = $("problem");
    if (!problem) {
        el.hidden = true;
        el.textContent = "";
        return;
    }
    el.textContent = typeof problem === "string" ? problem
        : problem.detail || problem.title || problem.message
          || String(problem);
    el.hidden = false;
}

/* API errors are problem+json (RFC 9457): their detail is for people. */
async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
        res = await fetch(API + path, {
            method, headers,
            body: body === undefined ? undefined : JSON.stringify(body),
        });
    } catch (e) {
        throw { detail: "The server cannot be reached. Try again." };
    }
    const text = await res.text();
    let data = null;
    try {
        data = text ? JSON.parse(text) : null;
    } catch (e) {
        data = null;
    }
    if (!res.ok) {
        if (res.status === 401 && path !== "/auth/login") logout(false);
        throw data && typeof data === "object" ? { status: res.status, ...data }
            : { status: res.status, title: res.statusText || "Error " + res.status };
    }
    return data;
}

function show(view) {
    for (const v of ["login-view", "sessions-view", "waiting-view",
                     "visits-view", "room-view"]) {
        $(v).hidden = v !== view;
    }
    $("menu").hidden = !me || me.type !== "staff" || view === "room-view"
        || view === "login-view";
    for (const [button, v] of [["menu-sessions", "sessions-view"],
                               ["menu-visits", "visits-view"],
                               ["menu-waiting", "waiting-view"]]) {
        if (v === view) $(button).setAttribute("aria-current", "page");
        else $(button).removeAttribute("aria-current");
    }
    if (view === "sessions-view") startPolling();
    else stopPolling();
    if (view === "waiting-view") startWaitingPolling();
    else stopWaitingPolling();
    if (view === "visits-view") visitsView.start();
    else visitsView.stop();
}

/* ------------------------------------------------------------ sessions */

async function enter() {
    me = await api("GET", "/me");
    $("me-name").textContent = me.display_name;
    $("me-role").textContent = me.type === "staff" ? me.role : "patient";
    $("whoami").hidden = false;
    $("create-session").hidden = me.type !== "staff";
    $("filter-form").hidden = me.type !== "staff";
    openConsoleEvents();
    if (me.type === "staff") {
        await loadPatients();
        waitingRoom.refresh().catch(() => {});
    }
    await listSessions();
    show("sessions-view");
}

/*
 * The patients this staff member reaches (GET /patients) as a list; the id
 * field stays for an API without the list and for more patients than one
 * page holds.
 */
async function loadPatients() {
    let res = null;
    try {
        res = await api("GET", "/patients?limit=200");
    } catch (e) {
        res = null;
    }
    const items = res && Array.isArray(res.items) ? res.items : null;
    const usable = !!items && items.length > 0;
    const more = !usable || !!res.next_cursor;
    $("patient-pick").hidden = !usable;
    $("patient-id").hidden = !more;
    $("patient-id-hint").hidden = !more;
    $("patient-id-label").textContent = usable ? "or patient id" : "Patient id";
    if (!usable) return;
    const select = $("patient-select");
    select.replaceChildren();
    for (const p of items) {
        const option = document.createElement("option");
        option.value = p.id;
        option.textContent = p.display_name;
        select.append(option);
        patientNames.set(p.id, p.display_name);
    }
    onKindChange();
}

/* Names of the patients this staff member reaches, by id. */
const patientNames = new Map();

/*
 * The kinds about one patient (docs/api.md, POST /sessions): the others
 * take a patient or not, and the API's 422 says so when one is missing.
 */
const PATIENT_KINDS = new Set(["video_call", "virtual_visit", "appointment"]);

const KIND_NAMES = {};
for (const o of $("kind-select").options) {
    KIND_NAMES[o.value] = o.textContent.replace(/ \(.*\)$/, "");
}

function kindName(kind) {
    return KIND_NAMES[kind] || kind.replace(/_/g, " ");
}

/* The scheduled time, else when it was created; ended ones: when. */
function sessionTime(s) {
    const at = new Date(s.ended_at || s.scheduled_at || s.created_at);
    return at.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function sessionLabel(s) {
    return kindName(s.kind) + (s.name ? " " + s.name : "") + ", "
        + sessionTime(s);
}

/*
 * "My sessions": GET /sessions with the filters of the form (state, kind);
 * by default the API lists scheduled, open and recently ended sessions the
 * caller is on (a patient: only open ones).
 */
async function listSessions() {
    const form = new FormData($("filter-form"));
    const query = new URLSearchParams({ limit: "50" });
    for (const name of ["state", "kind"]) {
        if (form.get(name)) query.set(name, form.get(name));
    }
    const list = await api("GET", "/sessions?" + query);
    const body = $("sessions");
    const key = JSON.stringify(list.items.map((s) => [s.id, s.state, s.name,
        s.scheduled_at]));
    if (body.dataset.key === key) return;    /* keep focus where it is */
    body.dataset.key = key;
    body.replaceChildren();
    for (const s of list.items) {
        const tr = document.createElement("tr");
        tr.dataset.session = s.id;
        const time = document.createElement("time");
        time.dateTime = s.ended_at || s.scheduled_at || s.created_at;
        time.textContent = sessionTime(s);
        const state = document.createElement("span");
        state.className = "state state-" + s.state;
        state.textContent = s.state;
        const actions = document.createElement("td");
        if (s.state === "open") {
            actions.append(actionButton("Join", "join", s,
                () => join(s.id, s.audio_only).catch(failJoin)));
        }
        /* kept open by a chair: the next call opens a new room */
        if (s.state === "idle" && me.type === "staff") {
            actions.append(actionButton("New call", "join", s,
                () => join(s.id).catch(failJoin)));
            actions.append(actionButton("Close", "close-session", s,
                () => closeSession(s.id, "close").then(() => listSessions())
                    .catch(showProblem)));
        }
        /* a chair's record of it while its content exists */
        if (me.type === "staff" && isChairOf(s) && !s.purged_at
            && (s.state === "ended" || s.state === "idle"))
        {
            const a = document.createElement("a");
            a.className = "export";
            a.textContent = "PDF";
            a.href = "#";
            a.setAttribute("aria-label", "Export " + sessionLabel(s)
                + " as PDF");
            a.onclick = (ev) => {
                ev.preventDefault();
                exportPdf(s).catch(showProblem);
            };
            actions.append(a);
        }
        if (me.type === "staff" && s.state !== "ended") {
            actions.append(actionButton("Invites", "invites", s,
                () => openInvites(s).catch(showProblem)));
        }
        actions.append(actionButton("Chat", "chat", s,
            () => openChat(s).catch(showProblem)));
        for (const cell of [kindName(s.kind), s.name || "", time, state]) {
            const td = document.createElement("td");
            td.append(cell);
            tr.append(td);
        }
        tr.append(actions);
        body.append(tr);
    }
    $("sessions-table").hidden = list.items.length === 0;
    $("no-sessions").hidden = list.items.length > 0;
}

function actionButton(text, className, s, onclick) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = className;
    button.dataset.session = s.id;
    button.textContent = text;
    button.setAttribute("aria-label", text + " " + sessionLabel(s));
    button.onclick = onclick;
    return button;
}

function startPolling() {
    if (pollTimer) return;
    pollTimer = setInterval(() => {
        if (!token) return;
        listSessions().catch(() => {});
        if (invitesFor) {
            listInvites().catch(() => {});
            listBans().catch(() => {});
            listRegistrations().catch(() => {});
        }
    }, SESSIONS_POLL_MS);
}

function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
}

/* ------------------------------------------------------------- invites */

/*
 * A session's invites (docs/api.md, "Invites"): POST /sessions/{id}/invites
 * by e-mail, SMS, WhatsApp or as a link only, the status per invitee
 * (GET /sessions/{id}/invites and its "message"), resend and revoke.
 */
const CHANNEL_NAMES = { link: "link", email: "e-mail", sms: "SMS",
    whatsapp: "WhatsApp" };
let invitesFor = null;
/* the list has no revocation field: what this page revoked, it remembers */
const revokedInvites = new Set();

async function openInvites(s) {
    showProblem(null);
    invitesFor = s;
    $("invites-title").textContent = "Invites: " + sessionLabel(s);
    $("invite-status").textContent = "";
    showLink(null);
    $("invites").dataset.key = "";
    /* a session without a patient invites guests only */
    const radios = $("invite-form").elements.who;
    radios[0].disabled = !s.patient_id;
    if (!s.patient_id) radios[1].checked = true;
    $("guest-fields").hidden = !radios[1].checked;
    $("bans").dataset.key = "";
    $("bans-view").hidden = true;
    $("registrations").dataset.key = "";
    $("registrations-view").hidden = true;
    $("invites-view").hidden = false;
    await listInvites();
    await listBans().catch(() => {});
    await listRegistrations().catch(() => {});
    $("invites-title").focus();
}

function closeInvites() {
    invitesFor = null;
    showLink(null);
    $("invites-view").hidden = true;
}

async function listInvites() {
    const s = invitesFor;
    const list = await api("GET", "/sessions/" + s.id + "/invites?limit=200");
    if (invitesFor !== s) return;
    const ul = $("invites");
    const key = JSON.stringify([list.items, [...revokedInvites]]);
    if (ul.dataset.key === key) return;    /* keep focus where it is */
    ul.dataset.key = key;
    ul.replaceChildren();
    for (const item of list.items) {
        ul.append(inviteItem(s, item));
        if (item.invitee.display_name) {
            guestNames.set(item.invite_id, item.invitee.display_name);
        }
    }
    $("no-invites").hidden = list.items.length > 0;
}

/* ------------------------------------------------------------- bans */

/*
 * "Removed participants": whom a chair removed from the call is banned
 * from the session (docs/lifecycle.md, "Bans") until a chair lets them
 * back in: GET /sessions/{id}/bans, DELETE /sessions/{id}/bans/{participant}.
 * Only a chair of the session (or an admin) may see them; for anyone else
 * the section stays hidden.
 */
const guestNames = new Map();   /* invite id -> the guest's name */

function mayManage(s) {
    if (!me || me.type !== "staff") return false;
    if (me.role === "admin") return true;
    return (s.participants || []).some((p) => p.type === "staff"
        && p.id === me.id && p.role === "chair");
}

async function listBans() {
    const s = invitesFor;
    if (!s || !mayManage(s)) {
        $("bans-view").hidden = true;
        return;
    }
    let list;
    try {
        list = await api("GET", "/sessions/" + s.id + "/bans");
    } catch (p) {
        if (invitesFor === s) $("bans-view").hidden = true;
        return;
    }
    if (invitesFor !== s) return;
    const ul = $("bans");
    $("bans-view").hidden = false;
    const key = JSON.stringify(list.items);
    if (ul.dataset.key === key) return;    /* keep focus where it is */
    ul.dataset.key = key;
    ul.replaceChildren(...list.items.map((b) => banItem(s, b)));
    $("no-bans").hidden = list.items.length > 0;
}

/* A removed participant's name, as far as this page knows it. */
function participantName(id) {
    const [type, rest] = [id.split(":")[0], id.slice(id.indexOf(":") + 1)];
    const known = waitingRoom.nameOf(id) || seenNames.get(id);
    if (known) return known;
    if (type === "patient") return patientNames.get(rest) || "The patient";
    if (type === "guest") {
        const [invite, n] = rest.split(".");
        const name = guestNames.get(invite);
        return name ? name + (n ? " (" + n + ")" : "") : "A guest";
    }
    if (me && id === "staff:" + me.id) return me.display_name;
    return "A colleague";
}

function banItem(s, b) {
    const li = document.createElement("li");
    li.dataset.participant = b.participant;
    const who = participantName(b.participant);
    const name = document.createElement("strong");
    name.textContent = who;
    const when = document.createElement("span");
    when.textContent = " removed " + new Date(b.banned_at).toLocaleString([],
        { dateStyle: "medium", timeStyle: "short" }) + " ";
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Let back in";
    button.setAttribute("aria-label", "Let " + who + " back in");
    button.onclick = async () => {
        showProblem(null);
        try {
            await api("DELETE", "/sessions/" + s.id + "/bans/"
                + encodeURIComponent(b.participant));
            $("invite-status").textContent = who + " can join this session "
                + "again.";
            await listBans();
        } catch (p) {
            showProblem(p);
        }
    };
    li.append(name, when, button);
    return li;
}

/* ------------------------------------------------------ registrations */

/*
 * A group's registrations (docs/api.md, "Group registration"): who
 * registered with their link before it starts, for its moderator (a chair
 * of it, or an admin): GET /sessions/{id}/registrations, "Admit" per
 * person (POST .../registrations/{rid}/admit) and "Admit all"
 * (POST .../registrations/admit).  An admitted person's link lets them
 * straight into the room once it runs.
 */
const REGISTRATION_STATES = { registered: "waiting for admission",
    admitted: "admitted" };

async function listRegistrations() {
    const s = invitesFor;
    if (!s || s.kind !== "group" || !mayManage(s)) {
        $("registrations-view").hidden = true;
        return;
    }
    let list;
    try {
        list = await api("GET", "/sessions/" + s.id
            + "/registrations?limit=200");
    } catch (p) {
        if (invitesFor === s) $("registrations-view").hidden = true;
        return;
    }
    if (invitesFor !== s) return;
    $("registrations-view").hidden = false;
    const waiting = list.items.filter((r) => r.state === "registered");
    $("admit-registrations").disabled = waiting.length === 0;
    const ul = $("registrations");
    const key = JSON.stringify(list.items);
    if (ul.dataset.key === key) return;    /* keep focus where it is */
    ul.dataset.key = key;
    ul.replaceChildren(...list.items.map((r) => registrationItem(s, r)));
    $("no-registrations").hidden = list.items.length > 0;
}

function registrationItem(s, r) {
    const li = document.createElement("li");
    li.dataset.registration = r.id;
    li.dataset.state = r.state;
    const name = document.createElement("strong");
    name.textContent = r.display_name;
    const when = document.createElement("time");
    when.dateTime = r.registered_at;
    when.textContent = new Date(r.registered_at).toLocaleString([],
        { dateStyle: "medium", timeStyle: "short" });
    const state = document.createElement("span");
    state.className = "state state-" + r.state;
    state.textContent = REGISTRATION_STATES[r.state] || r.state;
    li.append(name, " registered ", when, " ", state);
    if (r.state === "registered") {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "Admit";
        button.setAttribute("aria-label", "Admit " + r.display_name);
        button.onclick = async () => {
            showProblem(null);
            try {
                await api("POST", "/sessions/" + s.id + "/registrations/"
                    + r.id + "/admit");
                $("invite-status").textContent = r.display_name
                    + " is admitted.";
                await listRegistrations();
            } catch (p) {
                showProblem(p);
            }
        };
        li.append(" ", button);
    }
    return li;
}

$("admit-registrations").onclick = async () => {
    const s = invitesFor;
    if (!s) return;
    showProblem(null);
    try {
        const res = await api("POST", "/sessions/" + s.id
            + "/registrations/admit");
        $("invite-status").textContent = res.admitted === 1
            ? "1 person is admitted." : res.admitted + " people are admitted.";
        await listRegistrations();
    } catch (p) {
        showProblem(p);
    }
};

function inviteItem(s, item) {
    const li = document.createElement("li");
    li.dataset.invite = item.invite_id;
    const who = item.invitee.display_name || item.invitee.contact || "Guest";
    const name = document.createElement("strong");
    name.textContent = who;
    const lines = [" by " + CHANNEL_NAMES[item.channel]
        + (item.invitee.contact ? " (" + item.invitee.contact + ")" : "")];
    const revoked = revokedInvites.has(item.invite_id);
    if (revoked) lines.push("The link has been revoked.");
    else if (item.joined) {
        lines.push("Joined at " + new Date(item.joined_at)
            .toLocaleTimeString([], { timeStyle: "short" }) + ".");
    } else if (item.message) lines.push(item.message);
    if (item.delivery && item.delivery.status === "failed") {
        lines.push("Not delivered" + (item.delivery.reason
            ? ": " + item.delivery.reason : "") + ".");
    }
    for (const t of item.third_parties || []) {
        lines.push("Also " + t.display_name + (t.relation ? " (" + t.relation
            + ")" : "") + " by " + CHANNEL_NAMES[t.channel]
            + (t.delivery ? ": " + t.delivery.status : "") + ".");
    }
    const text = document.createElement("span");
    text.className = "invite-status";
    text.textContent = lines.shift() + " " + lines.join(" ");
    const actions = document.createElement("span");
    actions.className = "actions";
    const button = (label, onclick) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = label;
        b.setAttribute("aria-label", label + " the invite of " + who);
        b.onclick = () => onclick().catch(showProblem);
        actions.append(b);
    };
    button("Resend", async () => {
        showProblem(null);
        const again = await api("POST", "/sessions/" + s.id + "/invites/"
            + item.invite_id + "/resend");
        revokedInvites.delete(again.id);
        sent(again, who, "sent again; the earlier link no longer works");
    });
    if (!revoked && !item.joined) {
        button("Revoke", async () => {
            showProblem(null);
            await api("DELETE", "/sessions/" + s.id + "/invites/"
                + item.invite_id);
            revokedInvites.add(item.invite_id);
            $("invite-status").textContent = "The link of " + who
                + " no longer works.";
            showLink(null);
            await listInvites();
        });
    }
    li.append(name, text, actions);
    return li;
}

/* After create or resend: a link-only invite's link, shown this once. */
function sent(invite, who, what) {
    $("invite-status").textContent = "Invite for " + who + " " + what + ".";
    showLink(invite.channel === "link" && invite.url
        ? new URL(invite.url, location.href).href : null);
    listInvites().catch(showProblem);
}

function showLink(url) {
    $("invite-url").value = url || "";
    $("invite-link").hidden = !url;
}

$("invite-form").onsubmit = async (ev) => {
    ev.preventDefault();
    showProblem(null);
    const form = new FormData(ev.target);
    const body = { channel: form.get("channel") };
    let who;
    if (form.get("who") === "patient") {
        body.patient_id = invitesFor.patient_id;
        who = "the patient";
    } else {
        who = String(form.get("guest_name") || "").trim() || "the guest";
        body.invitee = { display_name: String(form.get("guest_name") || "") };
        if (body.channel !== "link") {
            body.contact = String(form.get("contact") || "").trim();
        }
    }
    try {
        const invite = await api("POST", "/sessions/" + invitesFor.id
            + "/invites", body);
        sent(invite, invite.invitee.display_name || who,
            body.channel === "link" ? "created"
            : "sent by " + CHANNEL_NAMES[body.channel]);
    } catch (p) {
        showProblem(p);
    }
};

for (const radio of document.querySelectorAll("#invite-form [name=who]")) {
    radio.onchange = () => {
        $("guest-fields").hidden = !$("invite-form").elements.who[1].checked;
    };
}

$("copy-link").onclick = async () => {
    const url = $("invite-url").value;
    try {
        await navigator.clipboard.writeText(url);
        $("invite-status").textContent = "The link has been copied.";
    } catch (e) {
        $("invite-url").select();
        $("invite-status").textContent = "Copy the selected link "
            + "(Ctrl+C or Cmd+C).";
    }
};
$("close-invites").onclick = closeInvites;

/* ---------------------------------------------------------------- chat */

async function openChat(s) {
    $("chat-view").hidden = false;
    await sessionChat.open(s.id);
    $("chat-view").querySelector("h3").textContent =
        "Chat: " + sessionLabel(s);
}

/* ---------------------------------------------------------------- room */

function failJoin(problem) {
    showProblem(problem);
    if (call) call.end("error");
    else backToSessions("");
}

async function join(sessionId, audioOnly) {
    showProblem(null);
    if ($("notice")) $("notice").textContent = "";
    const grant = await api("POST", "/sessions/" + sessionId + "/join");
    roomSession = sessionId;
    show("room-view");
    $("room-title").focus();
    renderParticipants([]);
    setMedia({ publishing: false });
    roomChat.open(sessionId).catch(showProblem);
    /* a chair files stills of the video to the session's patient */
    $("capture-still").hidden = grant.role !== "chair";
    call = new TelehealthCall({
        server: janusServer(grant.janus_url || grant.janus_path),
        grant,
        audioOnly: !!audioOnly,
        freshGrant: () => api("POST", "/sessions/" + sessionId + "/join"),
        on: {
            status: (text) => { $("room-status").textContent = text; },
            error: (text) => showProblem(text),
            joined: (id, role) => {
                $("room-status").textContent = "You are in the call as "
                    + role + ".";
                showSessionTools(sessionId, role).catch(() => {});
            },
            participants: renderParticipants,
            moved: (breakout) => {
                $("room-title").textContent = callHeading(breakout);
            },
            answered: (msg) => people.answered(msg),
            localTrack: onLocalTrack,
            remoteTrack: (t) => tiles.onRemoteTrack(t),
            remoteStreams: (streams) => tiles.onRemoteStreams(streams),
            media: setMedia,
            ended: onEnded,
        },
    });
    await call.start();
}

function renderParticipants(list) {
    people.render(call, list);
    tiles.recaption();
    for (const p of list || []) {
        if (p.display) seenNames.set(p.id, p.display);
    }
    admitOnArrival(list || []);
}

/* Display names seen in a room, by participant id (for removed people). */
const seenNames = new Map();

/*
 * "Admit" in the waiting room view joins the session and lets one person
 * in once the room's list shows them waiting: the chair's own "admit"
 * (docs/plugin.md), sent as the Admit button of room.js would.
 */
let admitOnJoin = null;     /* {session, participant, display} */

function admitOnArrival(list) {
    const want = admitOnJoin;
    if (!want || !call || !call.selfId) return;
    admitOnJoin = null;
    const p = list.find((x) => x.id === want.participant);
    if (call.role !== "chair") {
        $("room-status").textContent = "Only a chair can let "
            + want.display + " in.";
    } else if (p && p.state === "waiting") {
        call.moderate("admit", { participant: p.id });
    } else if (!p) {
        $("room-status").textContent = want.display
            + " is no longer waiting.";
    }
}

/* Join a session from the waiting room and admit that person. */
function admitFromWaitingRoom(entry) {
    showProblem(null);
    backTo = "waiting-view";
    admitOnJoin = { session: entry.sessionId, participant: entry.participant,
                    display: entry.display };
    join(entry.sessionId).catch((p) => {
        admitOnJoin = null;
        failJoin(p);
    });
}

/* Where a call ends: the view it was started from. */
let backTo = "sessions-view";

function captionOf(tile) {
    const p = people.get(tile.participant);
    let text = people.nameOf(tile.participant);
    if (tile.kind === "screen") text += "'s screen";
    else if (p && (p.audio_muted || p.video_paused)) {
        text += " (" + [p.audio_muted && "muted",
                        p.video_paused && "video paused"]
            .filter(Boolean).join(", ") + ")";
    }
    return text;
}

let localScreen = null;

function onLocalTrack(track, on) {
    if (track.kind !== "video") return;
    if (call && track === call.screenTrack) {
        if (on && !localScreen) {
            localScreen = document.createElement("figure");
            localScreen.className = "tile local screen";
            const video = document.createElement("video");
            video.autoplay = true;
            video.muted = true;
            video.playsInline = true;
            video.srcObject = new MediaStream([track]);
            video.setAttribute("aria-label", "Your shared screen");
            const caption = document.createElement("figcaption");
            caption.textContent = "Your screen";
            localScreen.append(video, caption);
            $("videos").append(localScreen);
        }
        return;
    }
    if (!on && localScreen && !call.screenTrack) {
        localScreen.remove();
        localScreen = null;
        return;
    }
    const video = $("local-video");
    if (on) {
        video.srcObject = new MediaStream([track]);
        video.play().catch(() => {});
    } else if (video.srcObject && video.srcObject.getTracks().includes(track)) {
        video.srcObject = null;
    }
}

function setButton(id, pressed, label) {
    const b = $(id);
    b.setAttribute("aria-pressed", pressed ? "true" : "false");
    b.textContent = label;
}

function setMedia(m) {
    $("mute").disabled = !m.publishing;
    $("pause-video").disabled = !m.publishing || !m.hasCamera;
    $("screen").disabled = !m.publishing;
    $("screen").hidden = m.canShare === false;
    $("switch-camera").hidden = !m.canSwitchCamera;
    setButton("mute", !!m.audioMuted, m.audioMuted ? "Unmute" : "Mute");
    setButton("pause-video", !!m.videoPaused,
        m.videoPaused ? "Resume video" : "Pause video");
    setButton("screen", !!m.sharing,
        m.sharing ? "Stop sharing" : "Share screen");
    $("local-tile").classList.toggle("paused", !!m.videoPaused);
}

function clearRoom() {
    tiles.clear();
    if (localScreen) localScreen.remove();
    localScreen = null;
    $("local-video").srcObject = null;
    $("room-title").textContent = callHeading(null);
    renderParticipants([]);
}

/*
 * The ways out of a session (docs/lifecycle.md, "Ending a session"):
 * "Close the session" ends it for everyone, "End the call, keep the
 * session open" closes the room and keeps the session for a later call;
 * "Leave" leaves the room running where the kind's leave rule lets it.
 */
let roomSession = null;     /* the session of the call on this page */

/* the kinds' leave rules (docs/lifecycle.md), where policies name none */
const DEFAULT_LEAVE_POLICY = {
    video_call: "close_on_staff_leave",
    virtual_visit: "caregiver_hangup_ends",
};

function isChairOf(s) {
    return (s.participants || []).some((p) => p.type === "staff"
        && p.id === me.id && p.role === "chair");
}

function closeSession(id, mode) {
    return api("POST", "/sessions/" + id + "/close", { mode });
}

async function exportPdf(s) {
    const res = await fetch(API + "/sessions/" + s.id + "/export.pdf",
        { headers: { "Authorization": "Bearer " + token } });
    if (!res.ok) {
        let p = null;
        try { p = await res.json(); } catch (e) { p = null; }
        throw p || { detail: "The export failed." };
    }
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = "session-" + s.id + ".pdf";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function showSessionTools(sessionId, role) {
    $("chair-end").hidden = role !== "chair";
    $("engagements").hidden = true;
    if (!me || me.type !== "staff") return;
    const s = await api("GET", "/sessions/" + sessionId);
    const leave = (s.policies && s.policies.leave_policy)
        || DEFAULT_LEAVE_POLICY[s.kind] || "stay";
    $("end-leave-note").textContent = leave === "stay"
        ? "Leave keeps the call running for the others."
        : "Leaving ends this call for everyone.";
    /* engagement records are about the session's patient, staff only */
    $("engagements").hidden = !s.patient_id;
}

async function startEngagement(kind, label) {
    if (!roomSession) return;
    const note = $("engagement-note").value.trim();
    try {
        await api("POST", "/sessions/" + roomSession + "/engagements",
            { kind, note: note || null });
        $("engagement-note").value = "";
        $("engagement-status").textContent = label + " started.";
    } catch (p) {
        showProblem(p);
    }
}

for (const b of document.querySelectorAll("#engagements [data-kind]")) {
    b.onclick = () => startEngagement(b.dataset.kind, b.textContent);
}
$("engagements").onsubmit = (ev) => ev.preventDefault();

$("end-close").onclick = () => {
    if (!roomSession) return;
    closeSession(roomSession, "close").catch(showProblem);
};
$("end-keep").onclick = () => {
    if (!roomSession) return;
    closeSession(roomSession, "keep_open").catch(showProblem);
};

function onEnded(reason, text) {
    call = null;
    roomSession = null;
    $("chair-end").hidden = true;
    $("engagements").hidden = true;
    $("engagement-status").textContent = "";
    clearRoom();
    backToSessions(text || "");
}

function backToSessions(text) {
    if (token && backTo === "visits-view")
        visitsView.refresh().catch(showProblem);
    show(token ? backTo : "login-view");
    backTo = "sessions-view";
    if (token) waitingRoom.refresh().catch(() => {});
    $("room-status").textContent = "";
    if (token) {
        $("no-sessions").hidden = true;
        $("sessions").dataset.key = "";
        listSessions().catch(showProblem);
        if (text) announce(text);
    }
}

/* A short message above the views, read out by screen readers. */
function announce(text) {
    let el = $("notice");
    if (!el) {
        el = document.createElement("p");
        el.id = "notice";
        el.setAttribute("role", "status");
        $("menu").after(el);
    }
    el.textContent = text;
}

/* ------------------------------------------------------ console events */

/*
 * GET /me/events through an EventSource, which cannot send a token: each
 * connection uses a fresh single-use ticket and resumes after the last
 * event seen (docs/api.md, "Console events").
 */
const CONSOLE_EVENTS = ["added", "waiting", "joined", "left", "hung_up",
    "closed"];
const CONSOLE_KEEP = 6;
let consoleEvents = null;
let consoleRetry = null;
let consoleLastId = null;

async function openConsoleEvents() {
    closeConsoleEvents();
    if (!token || !me) return;
    let ticket;
    try {
        ticket = (await api("POST", "/me/events/ticket")).ticket;
    } catch (e) {
        if (token) consoleRetry = setTimeout(openConsoleEvents, 5000);
        return;
    }
    const es = new EventSource(API + "/me/events?ticket="
        + encodeURIComponent(ticket)
        + (consoleLastId ? "&last_event_id=" + consoleLastId : ""));
    consoleEvents = es;
    for (const kind of CONSOLE_EVENTS) {
        es.addEventListener(kind, onConsoleEvent);
    }
    /* chat messages of every session of ours (staff, patients alike) */
    es.addEventListener("message", (e) => {
        consoleLastId = e.lastEventId || consoleLastId;
        let data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        roomChat.onEvent(data);
        sessionChat.onEvent(data);
    });
    es.addEventListener("end", (e) => {
        const reason = JSON.parse(e.data).reason;
        closeConsoleEvents();
        /* a reload of the server: come back; an expired token: log in */
        if (reason === "shutdown") {
            consoleRetry = setTimeout(openConsoleEvents, 1000);
        }
    });
    /* the ticket is spent, so the EventSource cannot reconnect itself */
    es.onerror = () => {
        if (consoleEvents !== es || es.readyState === EventSource.OPEN) return;
        closeConsoleEvents();
        consoleRetry = setTimeout(openConsoleEvents, 3000);
    };
}

function closeConsoleEvents() {
    clearTimeout(consoleRetry);
    consoleRetry = null;
    if (consoleEvents) consoleEvents.close();
    consoleEvents = null;
}

function onConsoleEvent(e) {
    consoleLastId = e.lastEventId || consoleLastId;
    let data;
    try {
        data = JSON.parse(e.data);
    } catch (err) {
        return;
    }
    const list = $("console-events");
    const li = document.createElement("li");
    li.className = "console-" + e.type;
    li.textContent = data.message + (data.session_name && e.type !== "added"
        ? " (" + data.session_name + ")" : "");
    list.prepend(li);
    while (list.children.length > CONSOLE_KEEP) list.lastChild.remove();
    $("console-feed").hidden = false;
    if (waitingRoom.onEvent(e.type, data)) arrivalCue();
    if (e.type === "waiting") ring();
    if (e.type === "added" || e.type === "waiting" || e.type === "closed") {
        listSessions().catch(() => {});
    }
}

/* Two short tones; browsers may keep quiet until the page was used. */
function ring() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
        const ctx = new Ctx();
        for (const at of [0, 0.35]) {
            const osc = ctx.createOscillator();
            const gain = ctx.createGain();
            osc.frequency.value = 880;
            gain.gain.value = 0.15;
            osc.connect(gain).connect(ctx.destination);
            osc.start(ctx.currentTime + at);
            osc.stop(ctx.currentTime + at + 0.2);
        }
        setTimeout(() => ctx.close(), 1000);
    } catch (err) {
        /* no sound: the list still shows who waits */
    }
}

/* -------------------------------------------------------- waiting room */

/*
 * The "Waiting room" view (Dashboard menu): who waits where in all of
 * this staff member's open sessions (waiting.js), with "Admit" per person
 * and "Start next consultation" for whoever has waited longest.  Someone
 * arriving rings (ring()), flags the menu and shows in the tab's title.
 */
const WAITING_POLL_MS = 10000;
const TITLE = document.title;
const waitingRoom = new WaitingRoom({
    api, me: () => me, onChange: renderWaitingRoom,
});
let waitingTimer = null;
let cueTimer = null;

function renderWaitingRoom() {
    const entries = me && me.type === "staff" ? waitingRoom.list() : [];
    const count = $("waiting-count");
    count.textContent = entries.length ? String(entries.length) : "";
    count.hidden = entries.length === 0;
    $("menu-waiting").setAttribute("aria-label", entries.length
        ? "Waiting room, " + entries.length + " waiting" : "Waiting room");
    document.title = entries.length ? "(" + entries.length + " waiting) "
        + TITLE : TITLE;
    const next = waitingRoom.next();
    $("start-next").disabled = !next;
    $("start-next").title = next ? "Admit " + next.display + " ("
        + waitingSession(next) + ")" : "";
    const body = $("waiting-list");
    const now = Date.now();
    const key = JSON.stringify(entries.map((e) => [e.key, e.display,
        waitedText(e.since, now), waitingRoom.isChair(e.sessionId),
        waitingSession(e)]));
    $("waiting-table").hidden = entries.length === 0;
    $("nobody-waiting").hidden = entries.length > 0;
    if (body.dataset.key === key) return;    /* keep focus where it is */
    body.dataset.key = key;
    body.replaceChildren(...entries.map((e) => waitingRow(e, now)));
}

/* What the waiting person is, by the type of their participant id. */
const PERSON_KINDS = { patient: "patient", guest: "guest", staff: "staff" };

/* "Consultation Knee review": the session's kind and name. */
function waitingSession(e) {
    const s = waitingRoom.session(e.sessionId);
    const name = (s && s.name) || e.sessionName;
    return s ? kindName(s.kind) + (name ? " " + name : "")
        : name || "A session";
}

function waitingRow(e, now) {
    const tr = document.createElement("tr");
    tr.dataset.session = e.sessionId;
    tr.dataset.participant = e.participant;
    const since = document.createElement("time");
    since.dateTime = new Date(e.since).toISOString();
    since.textContent = waitedText(e.since, now);
    const actions = document.createElement("td");
    const admit = document.createElement("button");
    admit.type = "button";
    admit.className = "admit";
    admit.dataset.key = "waiting-admit|" + e.key;
    admit.textContent = "Admit";
    admit.setAttribute("aria-label", "Admit " + e.display + " to "
        + waitingSession(e));
    if (waitingRoom.isChair(e.sessionId)) {
        admit.onclick = () => admitFromWaitingRoom(e);
    } else {
        admit.disabled = true;
        admit.title = "Only a chair of this session can let people in.";
    }
    actions.append(admit);
    const who = document.createElement("span");
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = PERSON_KINDS[e.participant.split(":")[0]] || "";
    who.append(e.display + " ", tag);
    for (const cell of [since, who, waitingSession(e)]) {
        const td = document.createElement("td");
        td.append(cell);
        tr.append(td);
    }
    tr.append(actions);
    return tr;
}

/* Someone arrived: the menu stands out for a while (the sound is ring()). */
function arrivalCue() {
    $("menu-waiting").classList.add("ringing");
    clearTimeout(cueTimer);
    cueTimer = setTimeout(() => {
        $("menu-waiting").classList.remove("ringing");
    }, 8000);
}

function startWaitingPolling() {
    if (waitingTimer) return;
    waitingRoom.refresh().catch(showProblem);
    waitingTimer = setInterval(() => {
        if (!token) return;
        waitingRoom.refresh().catch(() => {});
        renderWaitingRoom();   /* the minutes waited */
    }, WAITING_POLL_MS);
}

function stopWaitingPolling() {
    clearInterval(waitingTimer);
    waitingTimer = null;
}

$("menu-sessions").onclick = () => {
    showProblem(null);
    announce("");
    show("sessions-view");
    listSessions().catch(showProblem);
};
$("menu-visits").onclick = () => {
    showProblem(null);
    announce("");
    show("visits-view");
    $("visits-view-title").focus();
    visitsView.refresh().catch(showProblem);
};
$("menu-waiting").onclick = () => {
    showProblem(null);
    announce("");
    $("menu-waiting").classList.remove("ringing");
    show("waiting-view");
    $("waiting-view-title").focus();
};
$("start-next").onclick = () => {
    const next = waitingRoom.next();
    if (next) admitFromWaitingRoom(next);
};

/* ------------------------------------------------------------- account */

function logout(callApi) {
    closeConsoleEvents();
    closeInvites();
    consoleLastId = null;
    admitOnJoin = null;
    if ($("notice")) $("notice").textContent = "";
    if (call) call.leave();
    if (callApi && token) api("POST", "/auth/logout").catch(() => {});
    token = null;
    me = null;
    waitingRoom.clear();
    sessionStorage.removeItem("th.token");
    $("whoami").hidden = true;
    show("login-view");
}

$("login-form").onsubmit = async (ev) => {
    ev.preventDefault();
    showProblem(null);
    const form = new FormData(ev.target);
    try {
        const res = await api("POST", "/auth/login", {
            email: form.get("email"), password: form.get("password"),
        });
        token = res.access_token;
        sessionStorage.setItem("th.token", token);
        ev.target.reset();
        await enter();
    } catch (p) {
        showProblem(p);
    }
};

/* A session of any kind; a video call starts at once, the others wait. */
$("start-form").onsubmit = async (ev) => {
    ev.preventDefault();
    showProblem(null);
    const form = new FormData(ev.target);
    const typed = String(form.get("patient_id") || "").trim();
    const patient = typed || ($("patient-pick").hidden ? "" : form.get("patient"));
    /* without one, the API says whether this kind needs a patient */
    const body = { kind: form.get("kind") };
    if (patient) body.patient_id = patient;
    const name = String(form.get("name") || "").trim();
    if (name) body.name = name;
    if (form.get("scheduled_at")) {
        /* datetime-local is the browser's local time; the API wants UTC */
        body.scheduled_at = new Date(form.get("scheduled_at")).toISOString()
            .replace(/\.\d+Z$/, "Z");
    }
    if (form.get("access")) body.access = form.get("access");
    if (body.kind === "virtual_visit") {
        body.service_code = String(form.get("service_code") || "").trim();
    }
    let s;
    try {
        s = await api("POST", "/sessions", body);
    } catch (p) {
        showProblem(p);
        return;
    }
    if (s.kind === "video_call") {
        await join(s.id).catch(failJoin);
        return;
    }
    ev.target.reset();
    onKindChange();
    announce(sessionLabel(s) + ": created.");
    await listSessions().catch(showProblem);
};

function onKindChange() {
    const kind = $("kind-select").value;
    $("create-button").textContent = kind === "video_call"
        ? "Start video call" : "Create session";
    $("service-code").hidden = kind !== "virtual_visit";
    /* nobody chosen at first: "No patient" where the kind needs none */
    const optional = !PATIENT_KINDS.has(kind);
    for (const hint of document.querySelectorAll(".patient-optional")) {
        hint.hidden = !optional;
    }
    const select = $("patient-select");
    let none = select.querySelector("option[value='']");
    if (!none) {
        none = new Option("", "", true, true);
        select.prepend(none);
    }
    none.textContent = optional ? "No patient" : "Choose a patient";
}
$("kind-select").onchange = onKindChange;
for (const o of $("kind-select").options) {
    $("filter-kind").append(new Option(KIND_NAMES[o.value], o.value));
}
$("filter-form").onchange = () => listSessions().catch(showProblem);
$("filter-form").onsubmit = (ev) => ev.preventDefault();

$("mute").onclick = () => call && call.setAudioMuted(!call.audioMuted);
$("pause-video").onclick = () => call && call.setVideoPaused(!call.videoPaused);
$("switch-camera").onclick = () => call && call.switchCamera()
    .catch((e) => showProblem("The camera could not be switched: "
        + (e && e.message ? e.message : String(e))));
$("screen").onclick = () => {
    if (!call) return;
    const busy = call.screenMid ? call.stopScreen() : call.startScreen();
    $("screen").disabled = true;
    busy.catch((e) => showProblem("Screen sharing: " + callError(e)))
        .finally(() => call && call.emitMedia());
};
$("leave").onclick = () => {
    if (call) call.leave();
    else backToSessions("");
};
$("refresh").onclick = () => listSessions().catch(showProblem);
$("close-chat").onclick = () => {
    sessionChat.close();
    $("chat-view").hidden = true;
};
$("capture-still").onclick = () => {
    /* the first remote camera that shows something */
    const video = [...document.querySelectorAll("#videos video.remote")]
        .find((v) => v.dataset.kind !== "screen" && v.videoWidth > 0);
    roomChat.captureStill(video,
        "Still of " + (video ? people.nameOf(video.dataset.participant)
            : "the video") + ", filed to the patient.")
        .then(() => announce("The still was filed to the patient."))
        .catch(showProblem);
};
$("logout").onclick = () => logout(true);
/* Closing the tab is not "leave": Janus sees the WebSocket go (a hangup),
 * the call goes on and the person can come back (docs/plugin.md). */

if (token) enter().catch(() => logout(false));
else show("login-view");
