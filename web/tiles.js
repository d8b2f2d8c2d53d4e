/*
 * The remote video tiles of a call page: one tile per participant and kind
 * (camera, screen), fed by TelehealthCall's remoteTrack and remoteStreams
 * callbacks (call.js).  Shared by the console (index.html) and the guest
 * page (join.html); each page says how a participant is named and how a
 * tile is captioned.
 */
"use strict";

class RemoteTiles {
    /*
     * container: the element the tiles go in; nameOf(participantId) ->
     * display name; captionOf(tile) -> the caption text of a tile.
     */
    constructor(container, nameOf, captionOf) {
        this.container = container;
        this.nameOf = nameOf;
        this.captionOf = captionOf;
        this.tiles = new Map();     /* "participant|kind" -> tile */
    }

    recaption() {
        for (const tile of this.tiles.values()) this.caption(tile);
    }

    clear() {
        for (const tile of this.tiles.values()) tile.figure.remove();
        this.tiles.clear();
    }

    caption(tile) {
        const text = this.captionOf(tile);
        tile.caption.textContent = text;
        tile.video.setAttribute("aria-label", text);
    }

    tileFor(participant, kind) {
        const key = participant + "|" + kind;
        let tile = this.tiles.get(key);
        if (tile) return tile;
        const figure = document.createElement("figure");
        figure.className = "tile remote " + kind;
        const video = document.createElement("video");
        video.autoplay = true;
        video.playsInline = true;
        video.className = "remote";
        video.dataset.participant = participant;
        video.dataset.kind = kind;
        const caption = document.createElement("figcaption");
        figure.append(video, caption);
        this.container.append(figure);
        tile = { key, participant, kind, figure, video, caption,
                 tracks: new Map() };
        this.tiles.set(key, tile);
        this.caption(tile);
        return tile;
    }

    /* Browsers may refuse to play sound before a click: offer the click. */
    play(tile) {
        tile.video.play().catch(() => {
            if (tile.figure.querySelector(".play")) return;
            const button = document.createElement("button");
            button.type = "button";
            button.className = "play";
            button.textContent = "Play " + this.nameOf(tile.participant)
                + "'s video and sound";
            button.onclick = () => {
                button.remove();
                tile.video.play().catch(() => {});
            };
            tile.figure.append(button);
        });
    }

    setTracks(tile) {
        const tracks = [...tile.tracks.values()];
        if (tracks.length === 0) {
            tile.figure.remove();
            this.tiles.delete(tile.key);
            return;
        }
        const current = tile.video.srcObject
            ? tile.video.srcObject.getTracks() : [];
        if (current.length === tracks.length
            && tracks.every((t) => current.includes(t))) return;
        tile.video.srcObject = new MediaStream(tracks);
        this.play(tile);
    }

    onRemoteTrack(t) {
        if (!t.participant) return;         /* not (or no longer) a feed */
        const tile = this.tileFor(t.participant,
            t.description === "screen" ? "screen" : "camera");
        if (t.on) {
            tile.tracks.set(t.mid, t.track);
        } else if (t.track.readyState === "ended") {
            tile.tracks.delete(t.mid);
        } else {
            return;     /* only quiet for a while (paused, network): keep it */
        }
        this.setTracks(tile);
    }

    /* Streams that went inactive or changed hands leave their tile. */
    onRemoteStreams(streams) {
        const byMid = new Map(streams.map((s) => [s.mid, s]));
        for (const tile of [...this.tiles.values()]) {
            for (const mid of [...tile.tracks.keys()]) {
                const s = byMid.get(mid);
                const kind = s && s.description === "screen"
                    ? "screen" : "camera";
                if (!s || !s.active || s.participant !== tile.participant
                    || kind !== tile.kind) {
                    tile.tracks.delete(mid);
                }
            }
            this.setTracks(tile);
        }
    }
}
