// The Debian packages installed into the machine's own nginx and Janus
// (scripts/test.sh deb installs them with dpkg -i first): an nginx that
// loads the module through the load file the package enabled, serves the
// console and the headers snippet from their packaged paths and reads the
// packaged templates; a Janus that loads the packaged plugin with a
// configuration made from the packaged sample.  An organisation is made
// with the packaged telehealth-admin, its admin logs in and opens a call
// through the API, and the patient joins the room on the packaged Janus.
// Both run on test ports, next to the stack, and are stopped by pid.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, api, assertStatus, closeDb, createWorld, env,
    isPluginError, joinRoom, loginAll, startJanus, startNginx,
} from '../integration/lib.mjs';

const NGINX_PORT = Number(process.env.TH_NGINX2_PORT || 61081);
const JANUS_PORT = Number(process.env.TH_JANUS2_PORT || 61082);
const MULTIARCH = execFileSync('dpkg-architecture', ['-qDEB_HOST_MULTIARCH'])
    .toString().trim();

const PACKAGED = {
    module: '/usr/lib/nginx/modules/ngx_http_telehealth_module.so',
    loadFile: '/etc/nginx/modules-enabled/50-mod-http-telehealth.conf',
    plugin: `/usr/lib/${MULTIARCH}/janus/plugins/libjanus_telehealth.so`,
    sample: '/etc/janus/janus.plugin.telehealth.jcfg.sample',
    web: '/usr/share/telehealth/web',
    headers: '/etc/nginx/snippets/telehealth-headers.conf',
    templates: '/etc/telehealth/templates',
    admin: '/usr/bin/telehealth-admin',
};

let nginx;
let janus;
let pluginDir;
const conns = [];

const owner = (file) => execFileSync('dpkg', ['-S', file]).toString()
    .split(':')[0];

before(async () => {
    pluginDir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-deb-plugins-'));
    fs.symlinkSync(PACKAGED.plugin,
        path.join(pluginDir, 'libjanus_telehealth.so'));

    nginx = await startNginx(NGINX_PORT, (conf) => {
        let out = conf.replace(/load_module \S+;/,
            `include ${PACKAGED.loadFile};`);
        out = out.replace(/include \S+telehealth-headers\.conf;/g,
            `include ${PACKAGED.headers};`);
        out = out.replace(/telehealth_templates \S+;/,
            `telehealth_templates ${PACKAGED.templates};`);
        out = out.replace(/(location \/ \{\s*root )\S+;/,
            `$1${PACKAGED.web};`);
        for (const p of [PACKAGED.loadFile, PACKAGED.headers,
            PACKAGED.templates, PACKAGED.web]) {
            assert.ok(out.includes(p), `the conf uses ${p}`);
        }
        assert.doesNotMatch(out, /build\/ngx_http_telehealth_module/);
        // the load file names modules/... under nginx's prefix, as the
        // stock /usr/share/nginx/modules does
        const prefix = /\npid (\S+)\/nginx\.pid;/.exec(out)[1];
        fs.symlinkSync('/usr/lib/nginx/modules',
            path.join(prefix, 'modules'));
        return out;
    });

    const sample = fs.readFileSync(PACKAGED.sample, 'utf8');
    janus = await startJanus(JANUS_PORT, `deb-${process.pid}`,
        (name, text) => {
            if (name === 'janus.jcfg') {
                return text.replace(/plugins_folder = "[^"]*"/,
                    `plugins_folder = "${pluginDir}"`);
            }
            if (name !== 'janus.plugin.telehealth.jcfg') {
                return text;
            }
            // the packaged sample, with this stack's Redis and keys
            const out = sample
                .replace(/redis = "[^"]*"/,
                    `redis = "127.0.0.1:${env.redisPort}"`)
                .replace(/#?node_id = "[^"]*"/, `node_id = "deb-${process.pid}"`)
                .replace(/keys: \{[^}]*\}/, `keys: {
	j1 = "${env.keys}/j1.pub"
	j2 = "${env.keys}/j2.pub"
}`);
            assert.match(out, /j1 = /, 'the sample has a keys category');
            return out;
        });
});

after(async () => {
    await Promise.all(conns.map((c) => c.session.destroy().catch(() => {})));
    await janus?.stop();
    await nginx?.stop();
    if (pluginDir) {
        fs.rmSync(pluginDir, { recursive: true, force: true });
    }
    await closeDb();
});

describe('the installed packages', () => {
    test('the files come from the packages', () => {
        assert.equal(owner(PACKAGED.module), 'libnginx-mod-http-telehealth');
        assert.equal(owner(PACKAGED.plugin), 'janus-plugin-telehealth');
        assert.equal(owner(PACKAGED.admin), 'telehealth-common');
        assert.equal(owner(`${PACKAGED.web}/index.html`), 'telehealth-common');
        assert.match(fs.readFileSync(PACKAGED.loadFile, 'utf8'),
            /load_module modules\/ngx_http_telehealth_module\.so;/);
    });

    test('the console and its headers from the packaged paths', async () => {
        const res = await fetch(`${nginx.base}/`);
        assert.equal(res.status, 200);
        assert.match(await res.text(), /<html/i);
        assert.match(res.headers.get('content-security-policy') || '',
            /frame-ancestors 'none'/);
        const js = await fetch(`${nginx.base}/vendor/janus.js`);
        assert.equal(js.status, 200, 'janus.js through the packaged symlink');
    });

    test('telehealth-admin makes an organisation; its admin opens a call joined on the packaged Janus', async () => {
        const tag = crypto.randomBytes(4).toString('hex');
        const email = `deb.admin.${tag}@it.test`;
        const out = await new Promise((resolve) => {
            const child = execFile(PACKAGED.admin, ['-d', env.pg,
                '--password-stdin', 'create-org', `Packaged ${tag}`, email,
                'Packaged Admin'], { timeout: 30000 },
            (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout,
                stderr }));
            child.stdin.end('packaged-admin-pw\n');
        });
        assert.equal(out.code, 0, out.stderr);

        const login = await api('POST', `${nginx.api}/auth/login`,
            { body: { email, password: 'packaged-admin-pw' } });
        assertStatus(login, 200, 'login through the packaged module');

        const w = await createWorld('deb');
        const patient = await addPatient(w, 'deb');
        await loginAll([w.admin, patient]);
        const open = await api('POST', `${nginx.api}/sessions`, {
            token: w.admin.token,
            body: { kind: 'video_call', patient_id: patient.id } });
        assertStatus(open, 201, 'POST /sessions through the packaged module');
        const cred = await api('POST',
            `${nginx.api}/sessions/${open.body.id}/join`,
            { token: patient.token });
        assertStatus(cred, 200, 'a join credential');
        const conn = await joinRoom(cred.body.credential, janus.base);
        conns.push(conn);
        assert.ok(!isPluginError(conn.answer.data),
            `the join on the packaged plugin: ${
                JSON.stringify(conn.answer.data)}`);
    });
});
