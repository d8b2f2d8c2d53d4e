/*
 * Reference console: log in, start a video call, join its room.
 * Talks to the REST API (docs/api.md) and to janus.plugin.telehealth
 * through janus.js (docs/plugin.md).  No build step.
 */
"use strict";

const API = "/api/v1";
const JANUS_WS = (location.protocol === "https:" ? "wss://" : "ws://")
    + location.host + "/janus";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("th.token");
let me = null;
let janus = null;
let room = null;

function showProblem(problem) {
    const el = $("problem");
    if (!problem) {
        el.hidden = true;
        return;
    }
    el.textContent = problem.detail || problem.title || String(problem);
    el.hidden = false;
}

async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(API + path, {
        method, headers,
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
        if (res.status === 401 && path !== "/auth/login") logout(false);
        throw data || { title: res.statusText };
    }
    return data;
}

function show(view) {
    for (const v of ["login-view", "sessions-view", "room-view"]) {
        $(v).hidden = v !== view;
    }
}

async function enter() {
    me = await api("GET", "/me");
    $("me-name").textContent = me.display_name;
    $("me-role").textContent = me.type === "staff" ? me.role : "patient";
    $("whoami").hidden = false;
    $("start-call").hidden = me.type !== "staff";
    show("sessions-view");
    await listSessions();
}

async function listSessions() {
    const list = await api("GET", "/sessions");
    const ul = $("sessions");
    ul.replaceChildren();
    const open = list.items.filter((s) => s.state === "open");
    for (const s of open) {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.textContent = "Join";
        button.onclick = () => join(s).catch(showProblem);
        li.append(s.kind.replace("_", " ") + " started "
            + new Date(s.created_at).toLocaleTimeString() + " ", button);
        ul.append(li);
    }
    $("no-sessions").hidden = open.length > 0;
}

function renderParticipants(participants) {
    const ul = $("participants");
    ul.replaceChildren();
    for (const p of participants) {
        const li = document.createElement("li");
        const role = document.createElement("span");
        role.className = "tag";
        role.textContent = p.role;
        const flags = [];
        if (p.audio_muted) flags.push("muted");
        if (p.video_paused) flags.push("video paused");
        li.append(p.display + " ", role,
            flags.length ? " (" + flags.join(", ") + ")" : "");
        ul.append(li);
    }
}

function leaveRoomView(status) {
    if (janus) janus.destroy();
    janus = null;
    room = null;
    $("room-status").textContent = status;
    show("sessions-view");
    listSessions().catch(showProblem);
}

async function join(session) {
    const grant = await api("POST", "/sessions/" + session.id + "/join");
    await new Promise((resolve) => Janus.init({ debug: false, callback: resolve }));
    show("room-view");
    $("room-status").textContent = "Connecting...";
    janus = new Janus({
        server: JANUS_WS,
        error: (e) => showProblem({ detail: "Connection to the room lost: " + e }),
        success: () => janus.attach({
            plugin: grant.plugin,
            success: (handle) => {
                room = handle;
                handle.send({ message: { request: "join",
                                         credential: grant.credential } });
            },
            error: (e) => showProblem({ detail: String(e) }),
            onmessage: (msg) => onRoomEvent(msg),
        }),
    });
}

function onRoomEvent(msg) {
    if (msg.error) {
        showProblem({ detail: msg.error + " (" + msg.error_code + ")" });
        return;
    }
    switch (msg.telehealth) {
    case "joined":
        $("room-status").textContent = "You are in the room as " + msg.role + ".";
        renderParticipants(msg.participants || []);
        break;
    case "participants":
        renderParticipants(msg.participants || []);
        break;
    case "closed":
        leaveRoomView("The room was closed.");
        break;
    case "left":
        leaveRoomView("You left the room.");
        break;
    }
}

function logout(callApi) {
    if (callApi && token) api("POST", "/auth/logout").catch(() => {});
    token = null;
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
        await enter();
    } catch (p) {
        showProblem(p);
    }
};

$("start-form").onsubmit = async (ev) => {
    ev.preventDefault();
    showProblem(null);
    const form = new FormData(ev.target);
    try {
        const s = await api("POST", "/sessions", {
            kind: "video_call", patient_id: form.get("patient_id"),
        });
        await join(s);
    } catch (p) {
        showProblem(p);
    }
};

$("refresh").onclick = () => listSessions().catch(showProblem);
$("logout").onclick = () => logout(true);
$("leave").onclick = () => room && room.send({ message: { request: "leave" } });

if (token) enter().catch(() => logout(false));
else show("login-view");
