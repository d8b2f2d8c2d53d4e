// The device test of an invite (docs/api.md, "Invite messages"): a local
// camera preview and a microphone level meter.  No token, no server call:
// the media never leave the page.
'use strict';

(function () {
    const $ = (id) => document.getElementById(id);
    let stream = null;
    let audio = null;
    let frame = 0;
    let heard = false;

    function problem(text) {
        $('problem').textContent = text;
        $('problem').hidden = !text;
    }

    async function listDevices() {
        const devices = await navigator.mediaDevices.enumerateDevices();
        for (const [kind, select] of [['videoinput', $('camera')],
            ['audioinput', $('microphone')]]) {
            const chosen = select.value;
            select.textContent = '';
            devices.filter((d) => d.kind === kind).forEach((d, i) => {
                const o = document.createElement('option');
                o.value = d.deviceId;
                o.textContent = d.label || `${kind === 'videoinput'
                    ? 'Camera' : 'Microphone'} ${i + 1}`;
                select.append(o);
            });
            if (chosen) {
                select.value = chosen;
            }
        }
    }

    function stop() {
        cancelAnimationFrame(frame);
        if (audio) {
            audio.close();
            audio = null;
        }
        if (stream) {
            stream.getTracks().forEach((t) => t.stop());
            stream = null;
        }
        $('preview').srcObject = null;
        $('level').value = 0;
        $('stop').disabled = true;
    }

    // the loudness of the last audio frame, 0..1 (RMS of the samples)
    function meter(analyser) {
        const samples = new Float32Array(analyser.fftSize);
        const tick = () => {
            analyser.getFloatTimeDomainData(samples);
            let sum = 0;
            for (const v of samples) {
                sum += v * v;
            }
            const level = Math.min(1, Math.sqrt(sum / samples.length) * 4);
            $('level').value = level;
            if (level > 0.05 && !heard) {
                heard = true;
                $('verdict').textContent = 'Your microphone works.';
            }
            frame = requestAnimationFrame(tick);
        };
        tick();
    }

    async function start(ev) {
        ev.preventDefault();
        stop();
        problem('');
        heard = false;
        $('verdict').textContent = 'Say something to test the microphone.';
        const cam = $('camera').value;
        const mic = $('microphone').value;
        try {
            stream = await navigator.mediaDevices.getUserMedia({
                video: cam ? { deviceId: { exact: cam } } : true,
                audio: mic ? { deviceId: { exact: mic } } : true,
            });
        } catch (e) {
            $('verdict').textContent = '';
            problem(e && e.name === 'NotAllowedError'
                ? 'Please allow this page to use your camera and microphone.'
                : 'No camera or microphone could be started on this device.');
            return;
        }
        $('preview').srcObject = stream;
        $('stop').disabled = false;
        audio = new AudioContext();
        const analyser = audio.createAnalyser();
        analyser.fftSize = 1024;
        audio.createMediaStreamSource(stream).connect(analyser);
        meter(analyser);
        await listDevices();    // labels are known once allowed
    }

    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        problem('This browser cannot use a camera. Please try another ' +
            'browser.');
        $('start').disabled = true;
        return;
    }
    $('device-form').addEventListener('submit', start);
    $('stop').addEventListener('click', stop);
    listDevices().catch(() => {});
})();
