// scripts/telehealth-admin (docs/operations.md, "The first organisation"):
// an ops team creates an organisation and its admin without SQL; the
// admin logs in through the API and manages staff; set-password works;
// an e-mail in use is refused; the tool leaves audit rows.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
    api, assertStatus, closeDb, env, eventually, sql, undrain,
} from './lib.mjs';

after(closeDb);

const tool = path.join(env.root, 'scripts', 'telehealth-admin');

function run(args, input) {
    return new Promise((resolve) => {
        const child = execFile(tool, ['-d', env.pg, '--password-stdin',
            ...args], { timeout: 30000 }, (err, stdout, stderr) => {
            resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
        });
        // a command that reads no password may be gone before its input
        child.stdin.on('error', () => {});
        child.stdin.end(input);
    });
}

describe('telehealth-admin', () => {
    const tag = crypto.randomBytes(4).toString('hex');
    const email = `First.Admin.${tag}@it.test`;

    test('test_create_org_makes_an_admin_who_logs_in_and_manages_staff', async () => {
        const out = await run(['create-org', `Clinic ${tag}`, email,
            'First Admin'], 'first-admin-pw\n');
        assert.equal(out.code, 0, out.stderr);
        const org = /organisation ([0-9a-f-]{36})/.exec(out.stdout)[1];
        const admin = /admin ([0-9a-f-]{36})/.exec(out.stdout)[1];

        const login = await api('POST', '/auth/login', {
            body: { email, password: 'first-admin-pw' } });
        assertStatus(login, 200, 'the new admin logs in');
        assert.equal(login.body.user.id, admin);
        assert.equal(login.body.user.org_id, org);
        assert.equal(login.body.user.role, 'admin');

        const staff = await api('POST', '/staff', {
            token: login.body.access_token,
            body: { display_name: 'First Clinician', role: 'clinician',
                email: `first.clinician.${tag}@it.test` } });
        assertStatus(staff, 201, 'the admin creates staff');

        const rows = await sql(`SELECT action, actor_type FROM audit_log
            WHERE org_id = $1 AND actor_type = 'ops'`, [org]);
        assert.deepEqual(rows, [{ action: 'org_create', actor_type: 'ops' }]);
        const [o] = await sql(`SELECT video_consent_required FROM organisations
            WHERE id = $1`, [org]);
        assert.equal(o.video_consent_required, true,
            'a new organisation asks for consent to video');
        const hash = await sql('SELECT password_hash FROM logins ' +
            'WHERE email = $1', [email.toLowerCase()]);
        assert.match(hash[0].password_hash, /^\$argon2id\$/);
    });

    test('test_create_org_refuses_an_email_in_use', async () => {
        const out = await run(['create-org', `Clinic ${tag} bis`, email,
            'Second Admin'], 'first-admin-pw\n');
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /already in use/);
    });

    test('test_create_org_refuses_a_short_password', async () => {
        const out = await run(['create-org', `Clinic ${tag} ter`,
            `short.${tag}@it.test`, 'Short'], 'short\n');
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /at least 8/);
    });

    test('test_set_password_replaces_the_password', async () => {
        const out = await run(['set-password', email], 'second-admin-pw\n');
        assert.equal(out.code, 0, out.stderr);
        assertStatus(await api('POST', '/auth/login', {
            body: { email, password: 'second-admin-pw' } }), 200);
        assertStatus(await api('POST', '/auth/login', {
            body: { email, password: 'first-admin-pw' } }), 401);
        const none = await run(['set-password', `nobody.${tag}@it.test`],
            'whatever-pw\n');
        assert.notEqual(none.code, 0);
    });

    test('test_map_idp_maps_an_issuer_to_an_organisation', async () => {
        const issuer = `https://idp-${tag}.test.invalid/`;
        const [org] = await sql(`SELECT id FROM organisations
            ORDER BY created_at DESC LIMIT 1`);
        const out = await run(['map-idp', issuer, org.id], '');
        assert.equal(out.code, 0, out.stderr);
        const rows = await sql('SELECT org_id FROM idp_issuers ' +
            'WHERE issuer = $1', [issuer]);
        assert.deepEqual(rows, [{ org_id: org.id }]);
        const audit = await sql(`SELECT action FROM audit_log WHERE org_id = $1
            AND actor_type = 'ops' AND action = 'idp_issuer_map'`, [org.id]);
        assert.ok(audit.length >= 1, 'audited');
        const bad = await run(['map-idp', issuer, crypto.randomUUID()], '');
        assert.notEqual(bad.code, 0, 'an unknown organisation');
        await sql('DELETE FROM idp_issuers WHERE issuer = $1', [issuer]);
    });

    test('test_migrate_applies_the_migrations_again_and_changes_nothing',
        async () => {
            const out = await run(['migrate'], '');
            assert.equal(out.code, 0, out.stderr);
            assert.match(out.stdout, /migrate: applying the functions/);
            assert.doesNotMatch(out.stdout, /applying \d{3}_/,
                'every migration was applied already');
            const [v] = await sql(`SELECT max(left(version, 3)) AS v
                FROM schema_migrations`);
            const last = fs.readdirSync(path.join(env.root, 'sql'))
                .map((f) => /^(\d{3})_.*\.sql$/.exec(f)?.[1])
                .filter(Boolean).sort().pop();
            assert.equal(v.v, last);
        });

    test('test_drain_and_undrain_a_node_show_in_health_and_nodes',
        async () => {
            const node = process.env.TH_NODE_ID || 'local-1';
            const redisArgs = ['-r', `127.0.0.1:${env.redisPort}`];
            // the node's first heartbeat comes a refresh_interval after
            // Janus starts: the stack may have just been started
            assert.ok(await eventually(async () => (await api('GET',
                '/health')).body?.nodes?.some((n) => n.node === node),
            10000, 200), `${node} is live`);
            const drained = await run([...redisArgs, 'drain', node], '');
            try {
                assert.equal(drained.code, 0, drained.stderr);
                const h = await api('GET', '/health');
                assert.equal(h.body.nodes.find((n) => n.node === node)
                    .draining, true);
                const list = await run([...redisArgs, 'nodes'], '');
                assert.match(list.stdout,
                    new RegExp(`^${node} .*draining$`, 'm'));
            } finally {
                const undrained = await run([...redisArgs, 'undrain', node],
                    '');
                assert.equal(undrained.code, 0, undrained.stderr);
                // the node hears it with its next heartbeat
                await undrain(node);
            }
            const h = await api('GET', '/health');
            assert.equal(h.body.nodes.find((n) => n.node === node).draining,
                false);
            const bad = await run([...redisArgs, 'drain', 'no such/node'], '');
            assert.notEqual(bad.code, 0, 'a node id is checked');
        });
});
