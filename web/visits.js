/*
 * The console's virtual visits (docs/api.md, "Visits"): the visits the
 * staff member may see, with "Send invite to client", clock in, clock out
 * (asked again when the video is still active) and joining the visit's
 * video.  console.js owns the page (api, join, show, showProblem,
 * announce) and calls in here.
 */
"use strict";

const VISITS_POLL_MS = 5000;

const visitsView = {
    timer: null,

    /* While the view is shown its first page stays current. */
    start() {
        if (this.timer) return;
        this.timer = setInterval(() => this.refresh().catch(() => {}),
                                 VISITS_POLL_MS);
    },

    stop() {
        clearInterval(this.timer);
        this.timer = null;
    },

    /* GET /visits, soonest first; the next page by its cursor */
    async refresh(cursor) {
        const page = await api("GET", "/visits?limit=20"
            + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
        const body = $("visits");
        if (!cursor) body.replaceChildren();
        for (const v of page.items) body.append(this.row(v));
        $("visits-table").hidden = body.children.length === 0;
        $("no-visits").hidden = body.children.length !== 0;
        const more = $("visits-more");
        more.hidden = !page.next_cursor;
        more.onclick = () => this.refresh(page.next_cursor)
            .catch(showProblem);
    },

    row(v) {
        const tr = document.createElement("tr");
        const cell = (text) => {
            const td = document.createElement("td");
            td.textContent = text;
            tr.append(td);
            return td;
        };
        cell(new Date(v.scheduled_at).toLocaleString());
        cell(patientNames.get(v.patient_id) || v.patient_id);
        cell(v.service_code);
        cell(v.video_over ? "video over"
            : v.clocked_out_at ? "clocked out"
            : v.clocked_in_at ? "clocked in at "
              + new Date(v.clocked_in_at).toLocaleTimeString()
            : "not clocked in");
        const actions = cell("");
        const button = (label, fn, disabled) => {
            const b = document.createElement("button");
            b.type = "button";
            b.textContent = label;
            b.disabled = !!disabled;
            b.onclick = () => fn().catch(showProblem);
            actions.append(b, " ");
        };
        const mine = me && v.caregiver_id === me.id;
        button("Send invite to client", () => this.invite(v), v.video_over);
        if (mine) {
            button("Clock in", () => this.clock(v, "clock-in"),
                v.clocked_in_at);
            button("Clock out", () => this.clock(v, "clock-out"),
                !v.clocked_in_at || v.clocked_out_at);
            button("Join video", () => this.join(v),
                !v.session_id || v.video_over);
        }
        return tr;
    },

    async invite(v) {
        showProblem(null);
        await api("POST", "/visits/" + v.id + "/invite");
        announce("The invite was e-mailed to the client.");
        await this.refresh();
    },

    /* Clocking out while the video is active: the API asks, we ask. */
    async clock(v, what, body) {
        showProblem(null);
        try {
            await api("POST", "/visits/" + v.id + "/" + what, body);
        } catch (e) {
            if (e.type !== "urn:telehealth:problem:video-session-active")
                throw e;
            if (!window.confirm(e.detail)) return;
            await api("POST", "/visits/" + v.id + "/" + what,
                { confirm: true });
        }
        announce(what === "clock-in" ? "You are clocked in."
            : "You are clocked out.");
        await this.refresh();
    },

    async join(v) {
        backTo = "visits-view";
        await join(v.session_id).catch(failJoin);
    },
};
