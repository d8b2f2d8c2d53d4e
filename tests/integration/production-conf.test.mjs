// conf/production/nginx.conf (docs/operations.md, "Production") passes
// `nginx -t` with this build of the module: its paths point at files the
// test makes (a self-signed certificate, the keys, the Redis password, the
// SMTP login) and at the tree's headers snippet and templates.  nginx -t
// opens no socket and connects nowhere.  The file's promises are checked
// too: TLS with HTTP/2, HSTS and the headers snippet, limit_req on login,
// redeem and decide, a WebSocket proxy per Janus node, Sentinel with AUTH
// and a multi-host PostgreSQL.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { env } from './lib.mjs';

const conf = fs.readFileSync(
    path.join(env.root, 'conf/production/nginx.conf'), 'utf8');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'th-it-prodconf-'));

after(() => fs.rmSync(dir, { recursive: true, force: true }));

function makeFiles() {
    const etc = path.join(dir, 'etc');
    const ssl = path.join(dir, 'ssl');
    for (const d of [etc, ssl, path.join(dir, 'logs')]) {
        fs.mkdirSync(d, { recursive: true });
    }
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes',
        '-days', '1', '-subj', '/CN=telehealth.example.org',
        '-keyout', path.join(ssl, 'privkey.pem'),
        '-out', path.join(ssl, 'fullchain.pem')], { stdio: 'pipe' });
    fs.writeFileSync(path.join(etc, 'k1.key'),
        execFileSync('openssl', ['rand', '-base64', '48']));
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt',
        'ec_paramgen_curve:P-256', '-out', path.join(etc, 'j1.pem')]);
    fs.writeFileSync(path.join(etc, 'redis.password'), 'test-password\n');
    fs.writeFileSync(path.join(etc, 'smtp.credentials'),
        'telehealth:test-password\n');
}

function rendered() {
    return conf
        .replace('include /etc/nginx/modules-enabled/*.conf;',
            `load_module ${path.join(env.root,
                'build/ngx_http_telehealth_module.so')};`)
        .replaceAll('/etc/telehealth/templates',
            path.join(env.root, 'templates'))
        .replaceAll('/etc/telehealth/', `${dir}/etc/`)
        .replaceAll('/etc/ssl/telehealth/', `${dir}/ssl/`)
        .replaceAll('/etc/nginx/snippets/telehealth-headers.conf',
            path.join(env.root, 'conf/telehealth-headers.conf'))
        .replaceAll('/var/log/nginx/', `${dir}/logs/`)
        .replace('/run/nginx.pid', `${dir}/nginx.pid`);
}

describe('conf/production/nginx.conf', () => {
    test('nginx -t accepts it', () => {
        makeFiles();
        const file = path.join(dir, 'nginx.conf');
        fs.writeFileSync(file, rendered());
        const r = spawnSync('nginx', ['-t', '-p', `${dir}/`, '-c', file],
            { encoding: 'utf8', timeout: 30000 });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /test is successful/);
    });

    // each variant of the Redis and PostgreSQL lines: what nginx -t says
    for (const [what, from, to, expect] of [
        ['telehealth_redis next to telehealth_redis_sentinel',
            /(telehealth_redis_sentinel [^;]+;)/,
            '$1\n    telehealth_redis 10.0.0.41:6379;',
            /redis" directive conflicts with "telehealth_redis_sentinel"/],
        ['a sentinel named, not numeric',
            /telehealth_redis_sentinel telehealth \S+/,
            'telehealth_redis_sentinel telehealth sentinel-1.example:26379',
            /needs a numeric address/],
        ['a missing Redis password file',
            /telehealth_redis_auth telehealth \S+;/,
            `telehealth_redis_auth telehealth ${dir}/nothing-here;`,
            /nothing-here" failed/],
        ['a host name in the multi-host PostgreSQL list',
            /host=10\.0\.0\.51,10\.0\.0\.52/,
            'host=10.0.0.51,db-standby.example',
            /names would be resolved blocking/],
    ]) {
        test(`nginx -t refuses ${what}`, () => {
            makeFiles();
            const text = rendered().replace(from, to);
            assert.notEqual(text, rendered(), 'the variant changes the conf');
            const file = path.join(dir, 'variant.conf');
            fs.writeFileSync(file, text);
            const r = spawnSync('nginx', ['-t', '-p', `${dir}/`, '-c', file],
                { encoding: 'utf8', timeout: 30000 });
            assert.notEqual(r.status, 0, 'nginx -t fails');
            assert.match(r.stderr, expect);
        });
    }

    test('it says what the deployment promises', () => {
        assert.match(conf, /listen 443 ssl http2;/);
        assert.match(conf, /add_header Strict-Transport-Security/);
        assert.match(conf, /include \/etc\/nginx\/snippets\/telehealth-headers\.conf;/);
        for (const [route, zone] of [['auth/login', 'th_login'],
            ['invites/redeem', 'th_redeem'],
            ['interpreter-requests/decide', 'th_decide']]) {
            assert.match(conf, new RegExp(`location = /api/v1/${
                route.replace('/', '\\/')} \\{\\s*limit_req zone=${zone}`),
            `limit_req on ${route}`);
        }
        assert.match(conf, /location = \/janus\/janus-1 \{[^}]*Upgrade/);
        assert.match(conf, /location = \/janus\/janus-2 \{[^}]*Upgrade/);
        assert.match(conf, /telehealth_redis_sentinel telehealth( \S+){3};/);
        assert.match(conf, /telehealth_redis_auth telehealth /);
        assert.match(conf,
            /telehealth_postgres "host=[\d.]+,[\d.]+ [^"]*target_session_attrs=read-write/);
    });
});
