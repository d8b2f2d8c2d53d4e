// Delivery of the outbox by channel (docs/api.md "Notifications"): a row
// queued with th_notify() names a template, a language and params; the
// module renders templates/<language>/<template>.<channel> and sends it by
// e-mail (SMTP), WhatsApp or SMS (providers' HTTP APIs), all of which are
// fakes this file starts on loopback (conf/nginx.conf.in).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
    closeDb, createWorld, eventually, nginxEnv, sleep, sql, startFakeSms,
    startFakeWhatsapp, startSmtpSink, uniqueMobile,
} from './lib.mjs';

const FROM = 'noreply@telehealth.test';     // telehealth_email_from

let w;
let smtp;
let whatsapp;
let sms;

before(async () => {
    smtp = await startSmtpSink();
    whatsapp = await startFakeWhatsapp();
    sms = await startFakeSms();
    w = await createWorld('delivery');
});

after(async () => {
    await smtp?.close();
    await whatsapp?.close();
    await sms?.close();
    await closeDb();
});

function uniqueEmail(prefix = 'client') {
    return `${prefix}-${crypto.randomUUID().slice(0, 8)}@example.test`;
}

async function notify(channel, recipient, template, language, params,
    key = null) {
    const [row] = await sql(`SELECT th_notify($1, $2, $3, $4, $5, $6::jsonb,
        p_key => $7) AS id`, [w.org.id, channel, recipient, template,
        language, JSON.stringify(params), key]);
    return row.id;
}

const rowOf = async (id) => (await sql(
    'SELECT * FROM notifications WHERE id = $1', [id]))[0];

async function decided(id, ms = 8000) {
    return eventually(async () => {
        const r = await rowOf(id);
        return r.status !== 'pending' ? r : null;
    }, ms, 100);
}

// The Message-ID the module derives from an idempotency key.
function messageIdOf(key) {
    const hex = crypto.createHash('sha256').update(key).digest('hex');
    return `<${hex}.notify@telehealth.test>`;
}

test('test_email_arrives_with_recipient_subject_and_body', async () => {
    const to = uniqueEmail();
    const link = `https://telehealth.test/join#t=${crypto.randomUUID()}`;
    const id = await notify('email', to, 'invite', 'en', { link });

    assert.ok(await eventually(() => smtp.to(to).length > 0, 8000, 100),
        'the e-mail arrived');
    const [m] = smtp.to(to);
    assert.equal(m.from, FROM);
    assert.deepEqual(m.to, [to]);
    assert.equal(m.secure, true, 'over STARTTLS (required)');
    assert.equal(m.user, 'telehealth', 'logged in with the credentials');
    assert.equal(m.subject, 'Your video session');
    assert.match(m.text, /You are invited to a video session\. Join here:/);
    assert.ok(m.text.includes(link), 'the link, whole');
    assert.doesNotMatch(m.text, /\{\{|\}\}/, 'no placeholder left');

    assert.equal(m.headers.get('mime-version'), '1.0');
    assert.equal(m.headers.get('content-type').value, 'text/plain');
    assert.equal(m.headers.get('content-type').params.charset, 'UTF-8');
    assert.equal(m.headers.get('from').value[0].address, FROM);
    assert.equal(m.headers.get('from').value[0].name, 'Telehealth');
    assert.equal(m.headers.get('to').value[0].address, to);
    assert.ok(m.headers.get('date') instanceof Date);
    assert.ok(Math.abs(m.headers.get('date') - Date.now()) < 5 * 60000);

    const row = await decided(id);
    assert.equal(row.status, 'sent');
    assert.equal(m.messageId, messageIdOf(row.idempotency_key));
    assert.equal(row.subject, 'Your video session', 'the record shows it');
    assert.ok(row.body.includes(link));
    assert.ok(row.sent_at);
});

test('test_email_in_the_recipients_language_else_english', async () => {
    const nl = uniqueEmail('nl');
    const fr = uniqueEmail('fr');
    const link = 'https://telehealth.test/join#t=nl-or-en';
    await notify('email', nl, 'invite', 'nl', { link });
    await notify('email', fr, 'invite', 'fr', { link });

    assert.ok(await eventually(() => smtp.to(nl).length > 0 &&
        smtp.to(fr).length > 0, 8000, 100), 'both arrived');

    const [dutch] = smtp.to(nl);
    assert.equal(dutch.subject, 'Uw videosessie');
    assert.match(dutch.text, /U bent uitgenodigd voor een videosessie/);
    assert.doesNotMatch(dutch.text, /You are invited/);

    const [english] = smtp.to(fr);
    assert.equal(english.subject, 'Your video session',
        'no French templates: the default language');
    assert.match(english.text, /You are invited to a video session/);
});

test('test_email_utf8_subject_and_body_arrive_unchanged', async () => {
    const to = uniqueEmail('utf8');
    const params = {
        date: 'dinsdag 3 décembre', time: '14:30',
        link: 'https://telehealth.test/join#t=ü',
        device_test_link: 'https://telehealth.test/device-test',
    };
    const id = await notify('email', to, 'invite_scheduled', 'nl', params);

    assert.ok(await eventually(() => smtp.to(to).length > 0, 8000, 100));
    const [m] = smtp.to(to);
    assert.equal(m.subject, 'Uw videosessie op dinsdag 3 décembre om 14:30');
    assert.match(m.text, /Test uw camera en microfoon vóór de sessie:/);
    assert.ok(m.text.includes(params.device_test_link));
    const raw = m.headerLines.find((h) => h.key === 'subject').line;
    assert.match(raw, /^Subject: =\?UTF-8\?B\?/, 'RFC 2047 encoded');
    assert.equal(m.headers.get('content-transfer-encoding'), 'base64');
    assert.equal((await decided(id)).subject, m.subject);
});

test('test_whatsapp_arrives_at_its_provider', async () => {
    const to = uniqueMobile();
    const link = 'https://telehealth.test/join#t=whatsapp';
    const id = await notify('whatsapp', to, 'invite', 'nl', { link });

    assert.ok(await eventually(() => whatsapp.delivered(to).length > 0,
        8000, 100), 'the WhatsApp message arrived');
    const [m] = whatsapp.delivered(to);
    assert.equal(m.method, 'POST');
    assert.equal(m.url, '/messages');
    assert.match(m.headers['content-type'], /^application\/json/);
    assert.equal(m.headers.authorization, 'Bearer local-test-whatsapp-key');
    assert.deepEqual(m.fields, {
        to, body: `U bent uitgenodigd voor een videosessie. Doe hier mee: ${link}`,
        channel: 'whatsapp',
    });
    const row = await decided(id);
    assert.equal(row.status, 'sent');
    assert.equal(m.headers['idempotency-key'], row.idempotency_key);
    assert.equal(row.body, m.fields.body);
    assert.equal(sms.tried(to).length, 0, 'not by SMS');
});

test('test_smtp_down_then_up_delivers_exactly_once', async () => {
    const to = uniqueEmail('down');
    await smtp.close();
    let id;
    try {
        id = await notify('email', to, 'invite', 'en',
            { link: 'https://telehealth.test/join#t=down' });
        // (a connection kept from an earlier message may first get the
        // closing server's 421)
        const retried = await eventually(async () => {
            const r = await rowOf(id);
            return r.attempts >= 2 && /connect/i.test(r.reason) ? r : null;
        }, 8000, 100);
        assert.ok(retried, 'retried while the server is down');
        assert.equal(retried.status, 'pending');
    } finally {
        smtp = await startSmtpSink();
    }

    assert.ok(await eventually(() => smtp.to(to).length > 0, 10000, 100),
        'delivered once the server is back');
    await sleep(3000);
    assert.equal(smtp.to(to).length, 1, 'exactly once');
    const row = await rowOf(id);
    assert.equal(row.status, 'sent');
    assert.equal(row.reason, null);
    assert.equal(smtp.to(to)[0].messageId, messageIdOf(row.idempotency_key));
});

test('test_smtp_permanent_refusal_fails_without_retry', async () => {
    const to = uniqueEmail('reject');
    const id = await notify('email', to, 'invite', 'en',
        { link: 'https://telehealth.test/join#t=reject' });
    const row = await decided(id);
    assert.ok(row, 'decided');
    assert.equal(row.status, 'failed');
    assert.match(row.reason, /^SMTP server answered 550/);
    assert.equal(row.attempts, 1);
    await sleep(2500);
    assert.equal(smtp.offered.filter((a) => a === to).length, 1,
        'not retried');
    assert.equal(smtp.to(to).length, 0);
});

test('test_smtp_temporary_refusal_is_retried', async () => {
    const to = uniqueEmail('busy');
    const id = await notify('email', to, 'invite', 'en',
        { link: 'https://telehealth.test/join#t=busy' });
    try {
        const retried = await eventually(async () => {
            const r = await rowOf(id);
            return r.attempts >= 2 ? r : null;
        }, 8000, 100);
        assert.ok(retried, 'retried');
        assert.equal(retried.status, 'pending');
        assert.match(retried.reason, /^SMTP server answered 451/);
    } finally {
        await sql(`UPDATE notifications SET status = 'failed'
                    WHERE id = $1 AND status = 'pending'`, [id]);
    }
});

test('test_missing_param_fails_the_row_and_sends_nothing', async () => {
    const to = uniqueEmail('noparam');
    const mobile = uniqueMobile();
    const e = await notify('email', to, 'invite', 'en', {});
    const s = await notify('sms', mobile, 'invite', 'nl', { other: 'x' });

    const email = await decided(e);
    assert.equal(email.status, 'failed');
    assert.equal(email.reason,
        'template "invite.email" (en): no value for {{link}}');
    assert.equal(email.body, null, 'nothing was sent');
    const text = await decided(s);
    assert.equal(text.status, 'failed');
    assert.equal(text.reason,
        'template "invite.sms" (nl): no value for {{link}}');

    await sleep(1000);
    assert.equal(smtp.offered.filter((a) => a === to).length, 0);
    assert.equal(sms.tried(mobile).length, 0);
});

test('test_unknown_template_fails_the_row', async () => {
    const mobile = uniqueMobile();
    const id = await notify('sms', mobile, 'no_such_template', 'en', {});
    const row = await decided(id);
    assert.equal(row.status, 'failed');
    assert.equal(row.reason, 'no template "no_such_template.sms"');
    assert.equal(sms.tried(mobile).length, 0);
});

test('test_th_notify_is_idempotent_and_checks_its_input', async () => {
    const key = `test:${crypto.randomUUID()}`;
    const a = await notify('sms', uniqueMobile(), 'video_call_started', 'en',
        {}, key);
    const b = await notify('sms', uniqueMobile(), 'video_call_started', 'en',
        {}, key);
    assert.equal(a, b, 'the same key: the same message');

    await assert.rejects(notify('fax', '123', 'invite', 'en', {}),
        /unknown channel/);
    await assert.rejects(notify('sms', '', 'invite', 'en', {}),
        /no recipient/);
    await assert.rejects(notify('sms', '+1', '../etc/passwd', 'en', {}),
        /notifications_template_check/);
    await assert.rejects(notify('sms', '+1', 'invite', 'x/y', {}),
        /notifications_language_check/);
    await assert.rejects(sql(`SELECT th_notify($1, 'sms', '+1', 'invite',
        'en', '[1]')`, [w.org.id]), /params must be a JSON object/);
});

// nginx -t with the stack's configuration, its telehealth_templates
// pointing at a copy of the shipped templates that edit() changed.
async function checkTemplates(edit) {
    const prefix = path.join(process.env.TH_RUN, 'nginx');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'th-templates-'));
    const conf = path.join(prefix, `check-${path.basename(dir)}.conf`);
    try {
        await fs.cp(path.join(process.env.TH_ROOT, 'templates'), dir,
            { recursive: true });
        await edit(dir);
        const text = await fs.readFile(path.join(prefix, 'nginx.conf'),
            'utf8');
        assert.match(text, /telehealth_templates [^;]+;/);
        await fs.writeFile(conf, text.replace(/telehealth_templates [^;]+;/,
            `telehealth_templates ${dir};`));
        return await new Promise((resolve) => {
            execFile('nginx', ['-p', prefix, '-c', conf, '-t'],
                { env: nginxEnv },
                (err, stdout, stderr) => resolve({ ok: !err, stderr }));
        });
    } finally {
        await fs.rm(conf, { force: true });
        await fs.rm(dir, { recursive: true, force: true });
    }
}

test('test_templates_are_checked_when_the_configuration_loads',
    async () => {
        const shipped = await checkTemplates(async () => {});
        assert.ok(shipped.ok, `the shipped templates load: ${shipped.stderr}`);

        const noDefault = await checkTemplates((dir) => fs.writeFile(
            path.join(dir, 'nl', 'reminder.sms'), 'Tot {{time}}.\n'));
        assert.equal(noDefault.ok, false);
        assert.match(noDefault.stderr, /en\/reminder\.sms" is missing: the template "reminder" has no text in the default language "en"/);

        const open = await checkTemplates((dir) => fs.writeFile(
            path.join(dir, 'en', 'invite.sms'), 'Join: {{link}\n'));
        assert.equal(open.ok, false);
        assert.match(open.stderr,
            /en\/invite\.sms" line 1: "\{\{" must open a placeholder/);

        const subject = await checkTemplates((dir) => fs.writeFile(
            path.join(dir, 'nl', 'invite.email'), 'Hallo {{link}}\n'));
        assert.equal(subject.ok, false);
        assert.match(subject.stderr,
            /nl\/invite\.email" must start with a "Subject: \.\.\." line/);
    });
