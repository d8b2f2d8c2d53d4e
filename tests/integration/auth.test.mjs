// Authentication (docs/api.md, "Authentication"): password login for staff
// and patients, GET /me, access tokens refused for every way they can be
// wrong, logout revokes, and the generic problem answers (404, 413).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
    addPatient, addStaff, api, assertProblem, assertStatus, closeDb,
    createWorld, decodeJwt, env, joinCredential, login, mintToken, newJti,
    now, redis, sql, startSession, UUID_RE,
} from './lib.mjs';

let w;

before(async () => {
    w = await createWorld('auth');
});

after(closeDb);

// telehealth_max_body_size in the generated nginx.conf, in bytes.
function configuredBodyLimit() {
    let conf;
    try {
        conf = fs.readFileSync(
            path.join(env.run, 'nginx/nginx.conf'), 'utf8');
    } catch {
        return null;
    }
    const m = /^\s*telehealth_max_body_size\s+(\d+)([kKmM]?)\s*;/m.exec(conf);
    if (!m) {
        return null;
    }
    const unit = { '': 1, k: 1024, m: 1024 * 1024 }[m[2].toLowerCase()];
    return Number(m[1]) * unit;
}

function assertInvalidToken(res, what) {
    assertProblem(res, 401, 'unauthorized', what);
    const www = res.headers.get('www-authenticate') || '';
    assert.match(www, /^Bearer\b/i, `${what}: WWW-Authenticate "${www}"`);
    assert.match(www, /error="invalid_token"/,
        `${what}: WWW-Authenticate "${www}"`);
}

// A staff token from a real login, decoded: the claims the module issues,
// which the minted tokens below copy and change one thing of.
async function realStaffToken() {
    const token = await login(w.clinician);
    return { token, ...decodeJwt(token) };
}

function freshClaims(claims, changes = {}) {
    const t = now();
    return { ...claims, jti: newJti(), iat: t, exp: t + 300, ...changes };
}

describe('login', () => {
    test('staff member logs in with e-mail and password and gets a Bearer access token', async () => {
        const res = await api('POST', '/auth/login', {
            body: { email: w.coordinator.email, password: env.password },
        });
        assertStatus(res, 200, 'login');
        assert.match(res.headers.get('content-type') || '',
            /^application\/json\b/);
        assert.match(res.headers.get('cache-control') || '', /no-store/,
            'a token is never cached');
        assert.equal(res.body.token_type, 'Bearer');
        assert.equal(typeof res.body.access_token, 'string');
        assert.ok(Number.isInteger(res.body.expires_in) &&
            res.body.expires_in > 0, `expires_in ${res.body.expires_in}`);
        assert.deepEqual(res.body.user, {
            id: w.coordinator.id, type: 'staff', org_id: w.org.id,
            role: 'coordinator', display_name: w.coordinator.name,
            email: w.coordinator.email,
        });

        const { header, claims } = decodeJwt(res.body.access_token);
        assert.equal(header.alg, 'HS256');
        assert.equal(header.kid, 'k1', 'the first key of the set signs');
        assert.equal(claims.aud, 'telehealth-api');
        assert.equal(claims.iss, 'telehealth');
        assert.equal(claims.sub, w.coordinator.id);
        assert.equal(claims.typ, 'staff');
        assert.equal(claims.org, w.org.id);
        assert.equal(claims.role, 'coordinator');
        assert.equal(typeof claims.jti, 'string');
        assert.ok(claims.exp > claims.iat);
        assert.ok(Math.abs(claims.exp - claims.iat - res.body.expires_in) <= 1,
            'expires_in matches the token lifetime');
    });

    test('patient with an account logs in the same way', async () => {
        const res = await api('POST', '/auth/login', {
            body: { email: w.patient.email, password: env.password },
        });
        assertStatus(res, 200, 'patient login');
        assert.equal(res.body.token_type, 'Bearer');
        assert.deepEqual(res.body.user, {
            id: w.patient.id, type: 'patient', org_id: w.org.id, role: null,
            display_name: w.patient.name, email: w.patient.email,
        });
        const { claims } = decodeJwt(res.body.access_token);
        assert.equal(claims.typ, 'patient');
        assert.equal(claims.sub, w.patient.id);
        assert.equal(claims.role, undefined, 'patients carry no role claim');
    });

    test('e-mail is matched case-insensitively', async () => {
        const res = await api('POST', '/auth/login', {
            body: { email: w.admin.email.toUpperCase(),
                password: env.password },
        });
        assertStatus(res, 200, 'login with upper-case e-mail');
        assert.equal(res.body.user.id, w.admin.id);
    });

    test('wrong password is refused with invalid-credentials', async () => {
        const res = await api('POST', '/auth/login', {
            body: { email: w.admin.email, password: env.password + 'x' },
        });
        assertProblem(res, 401, 'invalid-credentials', 'wrong password');
        assert.ok(!('access_token' in res.body));
    });

    test('unknown e-mail gets the same answer as a wrong password', async () => {
        const wrong = await api('POST', '/auth/login', {
            body: { email: w.admin.email, password: 'not-the-password' },
        });
        const unknown = await api('POST', '/auth/login', {
            body: { email: `nobody.${w.tag}@it.test`, password: env.password },
        });
        assertProblem(unknown, 401, 'invalid-credentials', 'unknown e-mail');
        assert.equal(unknown.body.title, wrong.body.title);
        assert.equal(unknown.body.detail, wrong.body.detail,
            'the answer does not tell which accounts exist');
    });

    test('deactivated staff member cannot log in', async () => {
        const gone = await addStaff(w, 'clinician', 'deactivated');
        await sql('UPDATE staff SET active = false WHERE id = $1', [gone.id]);
        const res = await api('POST', '/auth/login', {
            body: { email: gone.email, password: env.password },
        });
        assertProblem(res, 401, 'invalid-credentials', 'deactivated login');
    });

    test('login body missing a field is a 400 invalid-request', async () => {
        for (const body of [
            { email: w.admin.email },
            { password: env.password },
            {},
        ]) {
            const res = await api('POST', '/auth/login', { body });
            assertProblem(res, 400, 'invalid-request',
                `login ${JSON.stringify(Object.keys(body))}`);
        }
    });

    test('login body that is not JSON is a 400 invalid-request', async () => {
        const res = await api('POST', '/auth/login', {
            raw: 'email=a@b.c&password=x',
            headers: { 'content-type': 'application/json' },
        });
        assertProblem(res, 400, 'invalid-request', 'non-JSON login body');
    });
});

describe('GET /me', () => {
    test('returns the staff member the token belongs to', async () => {
        const token = await login(w.supervisor);
        const res = await api('GET', '/me', { token });
        assertStatus(res, 200, 'GET /me');
        assert.deepEqual(res.body, {
            id: w.supervisor.id, type: 'staff', org_id: w.org.id,
            role: 'supervisor', display_name: w.supervisor.name,
            email: w.supervisor.email,
        });
    });

    test('returns the patient the token belongs to, with role null', async () => {
        const token = await login(w.patient);
        const res = await api('GET', '/me', { token });
        assertStatus(res, 200, 'GET /me as patient');
        assert.equal(res.body.id, w.patient.id);
        assert.equal(res.body.type, 'patient');
        assert.equal(res.body.role, null);
        assert.equal(res.body.org_id, w.org.id);
        assert.match(res.body.id, UUID_RE);
    });

    test('answers are not cached and HEAD works like GET without a body', async () => {
        const token = await login(w.supervisor);
        const get = await api('GET', '/me', { token });
        assertStatus(get, 200);
        assert.match(get.headers.get('cache-control') || '', /no-store/);
        const head = await api('HEAD', '/me', { token });
        assertStatus(head, 200, 'HEAD /me');
        assert.equal(head.text, '');
    });

    test('token of a staff member deactivated since login is refused', async () => {
        const gone = await addStaff(w, 'coordinator', 'deactivated-later');
        const token = await login(gone);
        assertStatus(await api('GET', '/me', { token }), 200, 'before');
        assertStatus(await api('PATCH', `/staff/${gone.id}`, {
            token: await login(w.admin), body: { active: false } }), 200,
        'deactivate');
        assertInvalidToken(await api('GET', '/me', { token }),
            'GET /me after deactivation');
    });

    // GET /me answers from the token's claims (docs/api.md): a change made
    // in the database behind the API's back reaches it when the token
    // expires, and every endpoint that reads the database at once
    test('deactivated in the database alone: endpoints that read it refuse the token', async () => {
        const gone = await addStaff(w, 'coordinator', 'deactivated-in-sql');
        const token = await login(gone);
        assertStatus(await api('GET', '/patients', { token }), 200, 'before');
        await sql(`UPDATE staff SET active = false WHERE id = $1`, [gone.id]);
        assertInvalidToken(await api('GET', '/patients', { token }),
            'GET /patients after deactivation in SQL');
    });

    test('without a token is 401 unauthorized', async () => {
        const res = await api('GET', '/me');
        assertProblem(res, 401, 'unauthorized', 'GET /me without token');
        assert.match(res.headers.get('www-authenticate') || '', /^Bearer\b/i);
    });
});

describe('access tokens the API refuses', () => {
    let real;

    before(async () => {
        real = await realStaffToken();
    });

    test('a token minted by the test exactly like the module is accepted (control)', async () => {
        const token = mintToken(freshClaims(real.claims));
        const res = await api('GET', '/me', { token });
        assertStatus(res, 200, 'control token');
        assert.equal(res.body.id, w.clinician.id);
    });

    test('token signed with k2 is accepted: every key of the set verifies', async () => {
        const token = mintToken(freshClaims(real.claims), { kid: 'k2' });
        const res = await api('GET', '/me', { token });
        assertStatus(res, 200, 'k2 token');
        assert.equal(res.body.id, w.clinician.id);
    });

    test('tampered payload is refused', async () => {
        const [h, , s] = real.token.split('.');
        const forged = Buffer.from(JSON.stringify({
            ...real.claims, role: 'admin', sub: w.admin.id,
        })).toString('base64url');
        const res = await api('GET', '/me', { token: `${h}.${forged}.${s}` });
        assertInvalidToken(res, 'tampered payload');
    });

    test('tampered signature is refused', async () => {
        const [h, p, s] = real.token.split('.');
        const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
        const res = await api('GET', '/me', { token: `${h}.${p}.${flipped}` });
        assertInvalidToken(res, 'tampered signature');
    });

    test('expired token is refused', async () => {
        const t = now();
        const token = mintToken(freshClaims(real.claims,
            { iat: t - 7200, exp: t - 3600 }));
        assertInvalidToken(await api('GET', '/me', { token }), 'expired');
    });

    test('token naming an unknown kid is refused', async () => {
        const token = mintToken(freshClaims(real.claims),
            { kid: 'k9', key: 'k1' });
        assertInvalidToken(await api('GET', '/me', { token }), 'unknown kid');
    });

    test('token for another audience (a join credential) is refused', async () => {
        const token = mintToken(freshClaims(real.claims,
            { aud: 'janus.plugin.telehealth' }), { alg: 'HS256' });
        assertInvalidToken(await api('GET', '/me', { token }),
            'wrong audience');
    });

    test('a token with API claims signed with a join key (ES256) is refused', async () => {
        for (const kid of ['j1', 'j2', 'k1']) {
            const token = mintToken(freshClaims(real.claims),
                { alg: 'ES256', kid, key: kid === 'j2' ? 'j2' : 'j1' });
            assertInvalidToken(await api('GET', '/me', { token }),
                `join key, kid ${kid}`);
        }
    });

    test('a real join credential is no access token', async () => {
        const token = await login(w.clinician);
        const s = await startSession(token,
            (await addPatient(w, 'join-api')).id);
        assertStatus(s, 201, 'session');
        const j = await joinCredential(token, s.body.id);
        assertStatus(j, 200, 'join');
        assertInvalidToken(await api('GET', '/me',
            { token: j.body.credential }), 'join credential as bearer');
    });

    test('token from another issuer is refused', async () => {
        const token = mintToken(freshClaims(real.claims, { iss: 'evil' }));
        assertInvalidToken(await api('GET', '/me', { token }), 'wrong issuer');
    });

    test('unsigned token (alg none) is refused', async () => {
        const token = mintToken(freshClaims(real.claims), { alg: 'none' });
        assertInvalidToken(await api('GET', '/me', { token }), 'alg none');
    });

    test('token signed with k2 but naming k1 is refused', async () => {
        const token = mintToken(freshClaims(real.claims),
            { kid: 'k1', key: 'k2' });
        assertInvalidToken(await api('GET', '/me', { token }),
            'wrong key for kid');
    });

    test('malformed bearer value is refused', async () => {
        for (const token of ['abc', 'a.b', 'a.b.c', '..', `${real.token}.x`]) {
            assertInvalidToken(await api('GET', '/me', { token }),
                `malformed "${token.slice(0, 20)}"`);
        }
    });
});

describe('logout', () => {
    test('after logout the same token is refused, other tokens still work', async () => {
        const token = await login(w.admin);
        const other = await login(w.admin);
        assertStatus(await api('GET', '/me', { token }), 200, 'before logout');

        const out = await api('POST', '/auth/logout', { token });
        assertStatus(out, 204, 'logout');

        assertInvalidToken(await api('GET', '/me', { token }),
            'token after logout');
        assertStatus(await api('GET', '/me', { token: other }), 200,
            'a second token of the same user');

        const { jti } = decodeJwt(token).claims;
        assert.equal(await redis('EXISTS', `th:revoked:${jti}`), '1',
            'the revocation is in Redis (docs/redis.md)');
        const ttl = Number(await redis('TTL', `th:revoked:${jti}`));
        assert.ok(ttl > 0, `th:revoked:<jti> has a TTL (got ${ttl})`);
    });

    test('logout without a token is 401', async () => {
        assertProblem(await api('POST', '/auth/logout'), 401, 'unauthorized',
            'logout without token');
    });
});

describe('problem answers', () => {
    test('unknown route is a 404 problem+json', async () => {
        const token = await login(w.coordinator);
        const res = await api('GET', '/no-such-route', { token });
        assertProblem(res, 404, 'not-found', 'GET /no-such-route');
    });

    test('known route with the wrong method is a 405 with Allow', async () => {
        const res = await api('DELETE', '/auth/login');
        assertProblem(res, 405, 'method-not-allowed', 'DELETE /auth/login');
        assert.match(res.headers.get('allow') || '', /POST/);
    });

    test('body over the size limit is a 413 problem+json', async () => {
        // Just over telehealth_max_body_size of the running configuration
        // (2 MiB when it is not set there), still a valid JSON document.
        const limit = configuredBodyLimit() ?? 2 * 1024 * 1024;
        const big = JSON.stringify({
            email: w.admin.email, password: env.password,
            pad: 'x'.repeat(limit + 1024),
        });
        const res = await api('POST', '/auth/login', {
            raw: big, headers: { 'content-type': 'application/json' },
        });
        assertProblem(res, 413, 'payload-too-large',
            `login with a ${big.length} byte body (limit ${limit})`);
    });
});
