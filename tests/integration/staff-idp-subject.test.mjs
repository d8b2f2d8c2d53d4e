// Staff idp_subject (docs/api.md, "Staff"; docs/directives.md,
// telehealth_idp_claim): admins set it through POST and PATCH /staff, it
// is unique per organisation (409), GET shows it, and an identity
// provider token whose claim carries it acts as that staff member.  The
// stack's nginx maps tokens by "email"; the test starts a second nginx
// with "telehealth_idp_claim sub;" on the stack's second port.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
    AUDIENCE, ISSUER, api, assertProblem, assertStatus, closeDb,
    createWorld, idpToken, jwksFile, loginAll, mapIdpIssuer, newIdpKey, now,
    startNginx, writeJwks,
} from './lib.mjs';

const PORT2 = Number(process.env.TH_NGINX2_PORT || 61082);

let w;
let key;
let bySub;              // the nginx that maps tokens by "sub"

const subject = (label) => `${label}|${crypto.randomBytes(6).toString('hex')}`;
const email = () => `idp.${crypto.randomBytes(5).toString('hex')}@it.test`;

function createStaff(token, body) {
    return api('POST', '/staff', { token, body: { display_name: 'IdP Staff',
        role: 'clinician', email: email(), ...body } });
}

function tokenFor(sub) {
    const t = now();
    return idpToken(key, { iss: ISSUER, aud: AUDIENCE, sub, iat: t,
        exp: t + 300 });
}

before(async () => {
    w = await createWorld('idpsub');
    await mapIdpIssuer(w.org.id);
    await loginAll([w.admin, w.supervisor, w.other.admin]);
    key = newIdpKey('RSA', `rsa-sub-${crypto.randomBytes(4).toString('hex')}`);
    await writeJwks([key], { reload: false });
    bySub = await startNginx(PORT2, (conf) => conf.replace(
        /telehealth_idp_claim\s+email;/, 'telehealth_idp_claim sub;'));
});

after(async () => {
    await bySub?.stop();
    fs.writeFileSync(jwksFile, JSON.stringify({ keys: [] }));
    await closeDb();
});

describe('staff idp_subject', () => {
    test('test_admin_sets_it_on_create_and_get_shows_it', async () => {
        const sub = subject('create');
        const res = await createStaff(w.admin.token, { idp_subject: sub });
        assertStatus(res, 201);
        assert.equal(res.body.idp_subject, sub);
        const get = await api('GET', `/staff/${res.body.id}`,
            { token: w.supervisor.token });
        assert.equal(get.body.idp_subject, sub);
        const plain = await createStaff(w.admin.token, {});
        assert.equal(plain.body.idp_subject, null);
    });

    test('test_admin_changes_and_clears_it_with_patch', async () => {
        const s = (await createStaff(w.admin.token, {})).body;
        const sub = subject('patch');
        const set = await api('PATCH', `/staff/${s.id}`, {
            token: w.admin.token, headers: { 'if-match': '"1"' },
            body: { idp_subject: sub } });
        assertStatus(set, 200);
        assert.equal(set.body.idp_subject, sub);
        assert.equal(set.headers.get('etag'), '"2"');
        const clear = await api('PATCH', `/staff/${s.id}`, {
            token: w.admin.token, body: { idp_subject: null } });
        assert.equal(clear.body.idp_subject, null);
    });

    test('test_unique_per_organisation: 409 in the same, allowed in another', async () => {
        const sub = subject('clash');
        assertStatus(await createStaff(w.admin.token, { idp_subject: sub }),
            201);
        assertProblem(await createStaff(w.admin.token, { idp_subject: sub }),
            409, 'conflict', 'the same organisation');
        const other = (await createStaff(w.admin.token, {})).body;
        assertProblem(await api('PATCH', `/staff/${other.id}`, {
            token: w.admin.token, body: { idp_subject: sub } }),
        409, 'conflict', 'PATCH to a subject in use');
        assertStatus(await createStaff(w.other.admin.token,
            { idp_subject: sub }), 201, 'another organisation');
    });

    test('test_bad_values_and_non_admins', async () => {
        for (const v of [42, '', ' padded ']) {
            assertProblem(await createStaff(w.admin.token,
                { idp_subject: v }), 422, 'validation', JSON.stringify(v));
        }
        assertProblem(await api('PATCH', `/staff/${w.supervisor.id}`, {
            token: w.supervisor.token, body: { idp_subject: 'x' } }),
        403, 'forbidden');
    });
});

describe('an identity provider token maps to the staff member by subject', () => {
    test('test_token_with_the_subject_acts_as_that_staff_member', async () => {
        const sub = subject('login');
        const s = (await createStaff(w.admin.token, { idp_subject: sub,
            role: 'coordinator' })).body;
        const me = await api('GET', `${bySub.api}/me`,
            { token: tokenFor(sub) });
        assertStatus(me, 200, 'GET /me with the IdP token');
        assert.equal(me.body.id, s.id);
        assert.equal(me.body.role, 'coordinator');
        assert.equal(me.body.org_id, w.org.id);
    });

    test('test_unknown_subject_is_refused', async () => {
        assertProblem(await api('GET', `${bySub.api}/me`,
            { token: tokenFor(subject('nobody')) }), 401, 'unauthorized');
    });

    test('test_the_same_subject_in_another_organisation_locks_nobody_out', async () => {
        const sub = subject('twice');
        const mine = await createStaff(w.admin.token, { idp_subject: sub });
        assertStatus(mine, 201);
        assertStatus(await createStaff(w.other.admin.token,
            { idp_subject: sub }), 201);
        const me = await api('GET', `${bySub.api}/me`,
            { token: tokenFor(sub) });
        assertStatus(me, 200, 'the issuer\'s organisation decides');
        assert.equal(me.body.id, mine.body.id);

        // a subject only another organisation has names nobody
        const theirs = subject('theirs');
        assertStatus(await createStaff(w.other.admin.token,
            { idp_subject: theirs }), 201);
        assertProblem(await api('GET', `${bySub.api}/me`,
            { token: tokenFor(theirs) }), 401, 'unauthorized');
    });
});
