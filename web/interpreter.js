/*
 * The page of an interpreting organisation's accept and refuse links
 * (/interpreter#accept=<token>, /interpreter#refuse=<token>; docs/api.md
 * "Interpreters"): it posts the decision to POST
 * /interpreter-requests/decide.  The token rides in the URL fragment so
 * that no access log sees it; it is taken from there at once and the
 * address bar is cleaned.
 */
"use strict";

(function () {
    const $ = (id) => document.getElementById(id);
    const hash = new URLSearchParams(location.hash.slice(1));
    const decision = hash.has("accept") ? "accept"
        : hash.has("refuse") ? "refuse" : null;
    const token = decision && hash.get(decision);
    history.replaceState(null, "", location.pathname + location.search);

    function problem(text) {
        $("problem").textContent = text || "";
        $("problem").hidden = !text;
    }

    async function decide(body) {
        let res;
        let data = null;
        try {
            res = await fetch("/api/v1/interpreter-requests/decide", {
                method: "POST",
                headers: { "Accept": "application/json",
                           "Content-Type": "application/json" },
                body: JSON.stringify({ token, decision, ...body }),
            });
            data = await res.json();
        } catch (e) {
            problem("The server cannot be reached. Try again.");
            return;
        }
        if (!res.ok) {
            problem(data && data.detail
                ? data.detail : "Something went wrong (" + res.status + ").");
            return;
        }
        $("accept-form").hidden = true;
        $("refuse-form").hidden = true;
        problem("");
        $("notice").textContent = data.decision === "accepted"
            ? "Thank you. " + data.interpreter.name
              + " will receive a link to the session by e-mail."
            : "Thank you. The request is refused.";
    }

    if (!token) {
        problem("This link is not valid.");
        return;
    }
    const form = $(decision + "-form");
    form.hidden = false;
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const f = new FormData(form);
        decide(decision === "accept"
            ? { interpreter: { name: f.get("name"), email: f.get("email") } }
            : {});
    });
})();
