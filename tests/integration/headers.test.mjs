// Browser security headers (conf/telehealth-headers.conf, included by the
// local stack's server): every page, script and API answer carries a CSP
// without inline script and without framing, nosniff and no referrer; and
// the pages have nothing inline that the CSP would block.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { api, env } from './lib.mjs';

const WEB = path.join(env.root, 'web');

// name -> value of each CSP directive
function parseCsp(header) {
    const out = {};
    for (const part of (header || '').split(';')) {
        const [name, ...values] = part.trim().split(/\s+/);
        if (name) {
            out[name.toLowerCase()] = values;
        }
    }
    return out;
}

function assertHeaders(res, what) {
    const h = res.headers;
    const csp = parseCsp(h.get('content-security-policy'));
    assert.ok(h.get('content-security-policy'), `CSP on ${what}`);
    assert.deepEqual(csp['frame-ancestors'], ["'none'"], `frame-ancestors ${what}`);
    assert.deepEqual(csp['script-src'], ["'self'"], `script-src ${what}`);
    assert.deepEqual(csp['object-src'], ["'none'"], `object-src ${what}`);
    assert.deepEqual(csp['default-src'], ["'self'"], `default-src ${what}`);
    for (const [name, values] of Object.entries(csp)) {
        assert.ok(!values.includes("'unsafe-inline'") &&
            !values.includes("'unsafe-eval'"), `${name} is strict on ${what}`);
    }
    assert.equal(h.get('x-content-type-options'), 'nosniff', what);
    assert.equal(h.get('referrer-policy'), 'no-referrer', what);
    assert.equal(h.get('x-frame-options'), 'DENY', what);
}

const pages = fs.readdirSync(WEB).filter((f) => f.endsWith('.html'));

describe('browser security headers', () => {
    for (const page of ['/', ...pages.map((p) => `/${p}`), '/console.js',
        '/console.css', '/vendor/janus.js', '/no-such-page']) {
        test(`GET ${page}`, async () => {
            const res = await fetch(env.base + page);
            await res.arrayBuffer();
            assertHeaders(res, page);
        });
    }

    test('API answers carry them too (200, 401, 404)', async () => {
        for (const [method, route] of [['GET', '/me'],
            ['GET', '/no-such-route'], ['POST', '/auth/login']]) {
            const res = await api(method, route, { body: method === 'POST'
                ? {} : undefined });
            assertHeaders(res, `${method} ${route} (${res.status})`);
        }
    });
});

describe('the pages work under the CSP', () => {
    for (const page of pages) {
        test(`${page}: no inline script, handler, style or javascript: URL`, () => {
            const html = fs.readFileSync(path.join(WEB, page), 'utf8');
            for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
                assert.match(m[1], /\bsrc=/, `a <script> without src in ${page}`);
                assert.equal(m[2].trim(), '', `inline script in ${page}`);
            }
            assert.doesNotMatch(html, /\son[a-z]+\s*=/i,
                `an inline event handler in ${page}`);
            assert.doesNotMatch(html, /<style\b|\sstyle\s*=/i,
                `inline style in ${page}`);
            assert.doesNotMatch(html, /javascript:/i, page);
            // every script and stylesheet it loads is ours
            for (const m of html.matchAll(/\s(?:src|href)="([^"]+)"/gi)) {
                assert.ok(!/^[a-z]+:\/\//i.test(m[1]) || m[1].startsWith('#'),
                    `${m[1]} is not from the page's origin (${page})`);
            }
        });
    }

    test('the scripts neither eval nor write style attributes or HTML', () => {
        for (const file of fs.readdirSync(WEB).filter((f) => f.endsWith('.js'))) {
            const js = fs.readFileSync(path.join(WEB, file), 'utf8');
            assert.doesNotMatch(js, /\beval\s*\(|new Function\s*\(/, file);
            assert.doesNotMatch(js, /setAttribute\(\s*["']style["']/, file);
            assert.doesNotMatch(js, /\.innerHTML\s*=|insertAdjacentHTML/, file);
        }
    });
});
