// Tokens of the hospital's identity provider (docs/api.md, "Identity
// provider tokens"; docs/directives.md, telehealth_idp_*): RS256 and ES256
// JWTs verified with the keys of the JWKS file the stack's nginx reads
// (@RUN@/idp/jwks.json), mapped to the staff member with the token's
// "email".  The test makes its own keys, writes the file and reloads nginx.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
    AUDIENCE, ISSUER, LEEWAY, api, assertProblem, assertStatus, b64url,
    closeDb, createWorld, env, eventually, idpToken, jwksFile, login,
    mapIdpIssuer, newIdpKey as newKey, now, sql, writeJwks,
} from './lib.mjs';

function claimsFor(person, extra = {}) {
    const t = now();
    return {
        iss: ISSUER, aud: AUDIENCE, sub: `idp|${person.id}`,
        email: person.email.toUpperCase(),  // the IdP's spelling may differ
        email_verified: true,
        iat: t, exp: t + 300, ...extra,
    };
}

const me = (token) => api('GET', '/me', { token });

function assertRefused(res, what) {
    assertProblem(res, 401, 'unauthorized', what);
    assert.match(res.headers.get('www-authenticate') || '', /^Bearer/,
        `WWW-Authenticate ${what}`);
}

let w;
let rsa;
let ec;

before(async () => {
    w = await createWorld('idp');
    // the identity provider signs in for this world's organisation
    await mapIdpIssuer(w.org.id);
    rsa = newKey('RSA', `rsa-${crypto.randomBytes(4).toString('hex')}`);
    ec = newKey('EC', `ec-${crypto.randomBytes(4).toString('hex')}`);
    await writeJwks([rsa, ec]);
    // the reload has taken effect once the new keys verify
    const ok = await eventually(async () =>
        (await me(idpToken(rsa, claimsFor(w.clinician)))).status === 200,
    10000);
    assert.ok(ok, 'nginx verifies with the keys written before the reload');
});

after(async () => {
    fs.writeFileSync(jwksFile, JSON.stringify({ keys: [] }));
    await closeDb();
});

describe('identity provider tokens', () => {
    test('test_good_rs256_token_acts_as_the_staff_member_of_its_email',
        async () => {
            const res = await me(idpToken(rsa, claimsFor(w.clinician)));
            assertStatus(res, 200, 'RS256');
            assert.equal(res.body.id, w.clinician.id);
            assert.equal(res.body.type, 'staff');
            assert.equal(res.body.role, 'clinician');
            assert.equal(res.body.org_id, w.org.id);
        });

    test('test_good_es256_token_acts_as_the_staff_member_of_its_email',
        async () => {
            const res = await me(idpToken(ec, claimsFor(w.admin)));
            assertStatus(res, 200, 'ES256');
            assert.equal(res.body.id, w.admin.id);
            assert.equal(res.body.role, 'admin');
        });

    test('test_idp_token_reaches_the_api_with_the_staff_members_rights',
        async () => {
            const token = idpToken(rsa, claimsFor(w.admin));
            const res = await api('GET', '/staff', { token });
            assertStatus(res, 200, 'GET /staff as admin');
            // the issuer signs in for this organisation only: the other
            // organisation's admin is nobody to it
            const other = idpToken(rsa, claimsFor(w.other.admin));
            const res2 = await api('GET', `/staff/${w.admin.id}`,
                { token: other });
            assertRefused(res2, 'staff of another organisation');
        });

    test('test_expired_token_refused_beyond_the_leeway', async () => {
        const t = now();
        assertRefused(await me(idpToken(rsa, claimsFor(w.clinician,
            { iat: t - 900, exp: t - LEEWAY - 30 }))), 'expired');
        const within = await me(idpToken(rsa, claimsFor(w.clinician,
            { iat: t - 900, exp: t - 10 })));
        assertStatus(within, 200, 'expired 10 s ago, within the leeway');
        assertRefused(await me(idpToken(rsa, claimsFor(w.clinician,
            { nbf: t + LEEWAY + 60 }))), 'not yet valid');
        const noExp = claimsFor(w.clinician);
        delete noExp.exp;
        assertRefused(await me(idpToken(rsa, noExp)), 'no exp');
    });

    test('test_wrong_issuer_refused', async () => {
        assertRefused(await me(idpToken(rsa, claimsFor(w.clinician,
            { iss: 'https://evil.test.invalid/' }))), 'wrong issuer');
        const noIss = claimsFor(w.clinician);
        delete noIss.iss;
        assertRefused(await me(idpToken(ec, noIss)), 'no issuer');
    });

    test('test_wrong_audience_refused', async () => {
        assertRefused(await me(idpToken(rsa, claimsFor(w.clinician,
            { aud: 'another-app' }))), 'wrong audience');
        const res = await me(idpToken(rsa, claimsFor(w.clinician,
            { aud: ['another-app', AUDIENCE] })));
        assertStatus(res, 200, 'audience in an array');
    });

    test('test_unknown_kid_refused', async () => {
        const stranger = newKey('RSA', 'not-in-the-jwks');
        assertRefused(await me(idpToken(stranger, claimsFor(w.clinician))),
            'unknown kid');
        // a known kid, but another key signed: bad signature
        const forged = { ...stranger, kid: rsa.kid };
        assertRefused(await me(idpToken(forged, claimsFor(w.clinician))),
            'signature of another key');
        const noKid = idpToken(rsa, claimsFor(w.clinician), { kid: undefined });
        assertRefused(await me(noKid), 'no kid');
    });

    test('test_alg_confusion_hs256_with_the_public_key_refused', async () => {
        for (const key of [rsa, ec]) {
            const header = { alg: 'HS256', typ: 'JWT', kid: key.kid };
            const signing = `${b64url(JSON.stringify(header))}.` +
                b64url(JSON.stringify(claimsFor(w.clinician)));
            const sig = crypto.createHmac('sha256', key.publicPem)
                .update(signing).digest();
            assertRefused(await me(`${signing}.${b64url(sig)}`),
                `HS256 with the ${key.alg} public key`);
        }
    });

    test('test_alg_must_match_the_keys_type', async () => {
        // ES256 claimed for the RSA key, RS256 for the EC key
        assertRefused(await me(idpToken(rsa, claimsFor(w.clinician),
            { alg: 'ES256' })), 'ES256 header, RSA key');
        assertRefused(await me(idpToken(ec, claimsFor(w.clinician),
            { alg: 'RS256' })), 'RS256 header, EC key');
        assertRefused(await me(idpToken(rsa, claimsFor(w.clinician),
            { alg: 'RS512' })), 'RS512');
    });

    test('test_alg_none_refused', async () => {
        const header = { alg: 'none', typ: 'JWT', kid: rsa.kid };
        const t = `${b64url(JSON.stringify(header))}.` +
            `${b64url(JSON.stringify(claimsFor(w.clinician)))}.`;
        assertRefused(await me(t), 'alg none');
    });

    test('test_tampered_claims_refused', async () => {
        const good = idpToken(rsa, claimsFor(w.clinician));
        const [h, , s] = good.split('.');
        const body = b64url(JSON.stringify(claimsFor(w.admin)));
        assertRefused(await me(`${h}.${body}.${s}`), 'claims swapped');
    });

    test('test_unknown_email_and_deactivated_staff_refused', async () => {
        assertRefused(await me(idpToken(rsa, claimsFor(w.clinician,
            { email: 'nobody@it.test' }))), 'no such staff');
        assertRefused(await me(idpToken(rsa, claimsFor(w.patient))),
            'a patient\'s e-mail is not staff');
        const noEmail = claimsFor(w.clinician);
        delete noEmail.email;
        assertRefused(await me(idpToken(rsa, noEmail)), 'no email claim');

        const token = idpToken(ec, claimsFor(w.supervisor));
        assertStatus(await me(token), 200, 'supervisor before');
        await sql('UPDATE staff SET active = false WHERE id = $1',
            [w.supervisor.id]);
        try {
            assertRefused(await me(token), 'deactivated');
        } finally {
            await sql('UPDATE staff SET active = true WHERE id = $1',
                [w.supervisor.id]);
        }
    });

    test('test_logout_revokes_an_idp_token', async () => {
        const token = idpToken(rsa, claimsFor(w.coordinator));
        assertStatus(await me(token), 200, 'before logout');
        assertStatus(await api('POST', '/auth/logout', { token }), 204,
            'logout');
        assertRefused(await me(token), 'after logout');
    });

    test('test_kid_rotation_with_a_reload', async () => {
        const next = newKey('RSA', `rsa-next-${crypto.randomBytes(4)
            .toString('hex')}`);
        assertRefused(await me(idpToken(next, claimsFor(w.clinician))),
            'new key before the JWKS names it');

        // the new key is published next to the old one
        await writeJwks([rsa, ec, next]);
        assert.ok(await eventually(async () =>
            (await me(idpToken(next, claimsFor(w.clinician)))).status === 200,
        10000), 'new key accepted after the reload');
        assertStatus(await me(idpToken(rsa, claimsFor(w.clinician))), 200,
            'old key still valid during the rotation');

        // the old key is retired
        await writeJwks([ec, next]);
        assert.ok(await eventually(async () =>
            (await me(idpToken(rsa, claimsFor(w.clinician)))).status === 401,
        10000), 'retired key refused after the reload');
        assertStatus(await me(idpToken(next, claimsFor(w.clinician))), 200,
            'new key after the rotation');
        rsa = next;
    });

    test('test_email_must_be_verified_to_name_someone', async () => {
        for (const v of [false, 'false', undefined, 1]) {
            const claims = claimsFor(w.clinician, { email_verified: v });
            if (v === undefined) {
                delete claims.email_verified;
            }
            assertRefused(await me(idpToken(rsa, claims)),
                `email_verified ${JSON.stringify(v)}`);
        }
        assertStatus(await me(idpToken(rsa, claimsFor(w.clinician,
            { email_verified: 'true' }))), 200, 'the string "true"');
    });

    test('test_staff_of_another_organisation_with_the_same_email_cannot_lock_out', async () => {
        // an IdP-only account (no password login) of the issuer's org ...
        const admin = await login(w.admin);
        const email = `idp.only.${crypto.randomBytes(5).toString('hex')}@it.test`;
        const a = await api('POST', '/staff', { token: admin, body: {
            display_name: 'IdP only', role: 'clinician', email } });
        assertStatus(a, 201, 'org A staff');
        const token = idpToken(rsa, claimsFor({ id: a.body.id, email }));
        assertStatus(await me(token), 200, 'before');

        // ... and an admin of another organisation makes a row with it
        const b = await api('POST', '/staff', {
            token: await login(w.other.admin), body: {
                display_name: 'Squatter', role: 'admin', email } });
        assertStatus(b, 201, 'org B staff with the same e-mail');

        const res = await me(token);
        assertStatus(res, 200, 'still the org A user, not refused');
        assert.equal(res.body.id, a.body.id);
        assert.equal(res.body.org_id, w.org.id);
    });

    test('test_the_issuer_signs_in_for_its_organisation_only', async () => {
        try {
            // mapped to the other organisation: this one's staff are nobody
            await mapIdpIssuer(w.other.org.id);
            assertRefused(await me(idpToken(rsa, claimsFor(w.clinician))),
                'staff of an organisation the issuer is not mapped to');
            const other = await me(idpToken(rsa, claimsFor(w.other.admin)));
            assertStatus(other, 200, 'staff of the mapped organisation');
            assert.equal(other.body.id, w.other.admin.id);

            // mapped to none: nobody
            await mapIdpIssuer(null);
            assertRefused(await me(idpToken(rsa, claimsFor(w.other.admin))),
                'an issuer mapped to no organisation');
        } finally {
            await mapIdpIssuer(w.org.id);
        }
    });

    test('test_our_own_tokens_still_work_next_to_the_idp', async () => {
        const res = await api('POST', '/auth/login', {
            body: { email: w.clinician.email, password: env.password },
        });
        assertStatus(res, 200, 'password login');
        assertStatus(await me(res.body.access_token), 200, 'own token');
    });
});
