/*
 * A session's chat (docs/api.md, "Chat"), shared by the console, the call
 * page and the guest's page: the history (GET /sessions/{id}/messages,
 * newest first, "Earlier messages" for the next page), new messages from
 * the event stream (GET /me/events, event "message"), a text field and an
 * attachment (photos, PDFs: POST /sessions/{id}/files, then the message
 * with its file_id).  Images are shown inline; every attachment is
 * fetched with the access token (downloads need it) and offered as a
 * download.  The CSP allows data: images only, so inline images are data:
 * URLs.  A chair can capture a still of a participant's video (canvas to
 * JPEG) and file it to the session's patient.
 */
"use strict";

/* Opens GET /me/events with a single-use ticket; onEvent(data) per message. */
function openMessageStream(apiBase, token, onEvent) {
    let es = null;
    let closed = false;
    let retry = null;
    let lastId = null;
    async function open() {
        if (closed) return;
        let ticket;
        try {
            const res = await fetch(apiBase + "/me/events/ticket", {
                method: "POST",
                headers: { "Authorization": "Bearer " + token },
            });
            if (!res.ok) throw new Error(String(res.status));
            ticket = (await res.json()).ticket;
        } catch (e) {
            retry = setTimeout(open, 5000);
            return;
        }
        es = new EventSource(apiBase + "/me/events?ticket="
            + encodeURIComponent(ticket)
            + (lastId ? "&last_event_id=" + lastId : ""));
        es.addEventListener("message", (e) => {
            lastId = e.lastEventId || lastId;
            try { onEvent(JSON.parse(e.data)); } catch (err) { /* ignore */ }
        });
        es.onerror = () => {
            if (es.readyState === EventSource.OPEN) return;
            es.close();
            if (!closed) retry = setTimeout(open, 3000);
        };
    }
    open();
    return {
        close() {
            closed = true;
            clearTimeout(retry);
            if (es) es.close();
        },
    };
}

class SessionChat {
    /*
     * root: an element to fill; apiBase "/api/v1"; getToken() -> the
     * access token; onProblem(problem) shows an error.
     */
    constructor(root, apiBase, getToken, onProblem) {
        this.root = root;
        this.apiBase = apiBase;
        this.getToken = getToken;
        this.onProblem = onProblem || (() => {});
        this.sessionId = null;
        this.seen = new Set();
        this.cursor = null;
        this.build();
    }

    build() {
        const el = (tag, props = {}) =>
            Object.assign(document.createElement(tag), props);
        this.root.replaceChildren();
        this.root.classList.add("chat");
        const h = el("h3", { textContent: "Chat" });
        this.more = el("button", { type: "button",
            textContent: "Earlier messages", hidden: true });
        this.more.onclick = () => this.loadPage().catch(this.onProblem);
        this.list = el("ol", { className: "chat-messages" });
        this.list.setAttribute("aria-live", "polite");
        this.list.setAttribute("aria-label", "Messages");
        this.form = el("form", { className: "chat-form" });
        this.text = el("input", { name: "text", maxLength: 2000,
            autocomplete: "off" });
        this.text.setAttribute("aria-label", "Message");
        this.file = el("input", { type: "file", name: "file",
            accept: "image/jpeg,image/png,application/pdf" });
        this.file.setAttribute("aria-label", "Attach a photo or PDF");
        const send = el("button", { type: "submit", textContent: "Send" });
        this.form.append(this.text, this.file, send);
        this.form.onsubmit = (ev) => {
            ev.preventDefault();
            this.send().catch(this.onProblem);
        };
        this.root.append(h, this.more, this.list, this.form);
    }

    async request(method, path, body, contentType) {
        const headers = { "Authorization": "Bearer " + this.getToken() };
        if (contentType) headers["Content-Type"] = contentType;
        let res;
        try {
            res = await fetch(this.apiBase + path, { method, headers, body });
        } catch (e) {
            throw { detail: "The server cannot be reached. Try again." };
        }
        if (!res.ok) {
            let p = null;
            try { p = await res.json(); } catch (e) { p = null; }
            throw p || { detail: "Something went wrong (" + res.status + ")." };
        }
        return res;
    }

    async open(sessionId) {
        this.sessionId = sessionId;
        this.seen.clear();
        this.cursor = null;
        this.list.replaceChildren();
        await this.loadPage();
    }

    close() {
        this.sessionId = null;
        this.list.replaceChildren();
    }

    async loadPage() {
        if (!this.sessionId) return;
        const q = "?limit=50" + (this.cursor ? "&cursor=" + this.cursor : "");
        const res = await this.request("GET",
            "/sessions/" + this.sessionId + "/messages" + q);
        const page = await res.json();
        /* newest first: each older one goes on top */
        for (const m of page.items) this.render(m, true);
        this.cursor = page.next_cursor;
        this.more.hidden = !this.cursor;
    }

    /* a "message" event of GET /me/events */
    onEvent(data) {
        if (!data || data.kind !== "message" || !data.message) return;
        if (data.session_id !== this.sessionId) return;
        this.render(data.message, false);
    }

    render(m, older) {
        if (this.seen.has(m.id)) return;
        this.seen.add(m.id);
        const li = document.createElement("li");
        li.className = "chat-message";
        li.dataset.id = m.id;
        const who = document.createElement("span");
        who.className = "chat-author";
        who.textContent = m.author.name;
        const when = document.createElement("time");
        when.dateTime = m.created_at;
        when.textContent = new Date(m.created_at).toLocaleTimeString([],
            { hour: "2-digit", minute: "2-digit" });
        const text = document.createElement("p");
        text.className = "chat-text";
        text.textContent = m.text;
        li.append(who, " ", when, text);
        if (m.attachment) li.append(this.attachment(m.attachment));
        if (older) this.list.prepend(li);
        else this.list.append(li);
    }

    attachment(f) {
        const box = document.createElement("div");
        box.className = "chat-attachment";
        const link = document.createElement("button");
        link.type = "button";
        link.className = "link";
        link.textContent = (f.content_type === "application/pdf" ? "PDF"
            : "Image") + " (" + Math.ceil(f.size / 1024) + " KB), download";
        link.onclick = () => this.download(f).catch(this.onProblem);
        box.append(link);
        if (f.content_type !== "application/pdf") {
            const img = document.createElement("img");
            img.alt = "Image from " + f.filename;
            img.className = "chat-image";
            box.prepend(img);
            this.blobOf(f).then((blob) => {
                const r = new FileReader();
                r.onload = () => { img.src = r.result; };
                r.readAsDataURL(blob);
            }).catch(() => {});
        }
        return box;
    }

    async blobOf(f) {
        return (await this.request("GET", f.url)).blob();
    }

    async download(f) {
        const url = URL.createObjectURL(await this.blobOf(f));
        const a = document.createElement("a");
        a.href = url;
        a.download = f.filename;
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
    }

    async upload(blob, toPatient) {
        const res = await this.request("POST", "/sessions/" + this.sessionId
            + "/files" + (toPatient ? "?file_to_patient=true" : ""), blob,
        blob.type || "application/octet-stream");
        return res.json();
    }

    async post(text, fileId) {
        const body = { text };
        if (fileId) body.file_id = fileId;
        const res = await this.request("POST",
            "/sessions/" + this.sessionId + "/messages",
            JSON.stringify(body), "application/json");
        this.render(await res.json(), false);
    }

    async send() {
        if (!this.sessionId) return;
        const text = this.text.value.trim();
        const file = this.file.files[0];
        if (!text && !file) return;
        const f = file ? await this.upload(file, false) : null;
        await this.post(text, f && f.id);
        this.text.value = "";
        this.file.value = "";
    }

    /* A still of a video element, as JPEG, filed to the patient. */
    async captureStill(video, caption) {
        if (!video || !video.videoWidth) {
            throw { detail: "There is no video to capture yet." };
        }
        const canvas = document.createElement("canvas");
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        canvas.getContext("2d").drawImage(video, 0, 0);
        const blob = await new Promise((resolve) =>
            canvas.toBlob(resolve, "image/jpeg", 0.9));
        const f = await this.upload(blob, true);
        await this.post(caption || "Still captured from the video.", f.id);
        return f;
    }
}
