#!/bin/sh
# Loads the demo organisation (once) and prints who can log in.
#
#   demo.sh BASE_URL "CONNINFO"

set -eu

base=$1
conninfo=$2
password=${TH_DEMO_PASSWORD:-telehealth-demo}

hash() {
    printf '%s' "$password" \
        | argon2 "$(openssl rand -hex 16)" -id -t 2 -m 16 -p 1 -e
}

if ! psql -X -q -d "$conninfo" -tAc \
    "SELECT 1 FROM organisations WHERE name = 'Demo Clinic'" | grep -q 1
then
    h=$(hash)
    psql -X -q -v ON_ERROR_STOP=1 -d "$conninfo" -v h="$h" <<'SQL'
BEGIN;
WITH org AS (
    INSERT INTO organisations (name) VALUES ('Demo Clinic') RETURNING id
), people (name, email, role) AS (VALUES
    ('Ada Admin',        'admin@demo.test',       'admin'),
    ('Sam Supervisor',   'supervisor@demo.test',  'supervisor'),
    ('Cora Coordinator', 'coordinator@demo.test', 'coordinator'),
    ('Cal Clinician',    'clinician@demo.test',   'clinician'),
    ('Dee Clinician',    'clinician2@demo.test',  'clinician')
), staff_rows AS (
    INSERT INTO staff (org_id, display_name, email, role)
    SELECT org.id, p.name, p.email, p.role FROM org, people p
    RETURNING id, email
), patient_rows AS (
    INSERT INTO patients (org_id, display_name, email, mobile, sms_capable,
                          language)
    SELECT org.id, v.name, v.email, v.mobile, v.sms, v.lang
    FROM org, (VALUES
        ('Pat Patient',   'patient@demo.test',  '+15550100001', true,  'en'),
        ('Pia Patientin', 'patient2@demo.test', '+15550100002', false, 'de')
    ) AS v (name, email, mobile, sms, lang)
    RETURNING id, email
), logins_staff AS (
    INSERT INTO logins (email, password_hash, staff_id)
    SELECT email, :'h', id FROM staff_rows
), logins_patients AS (
    INSERT INTO logins (email, password_hash, patient_id)
    SELECT email, :'h', id FROM patient_rows
)
INSERT INTO assignments (org_id, staff_id, patient_id)
SELECT org.id, s.id, p.id
FROM org, staff_rows s, patient_rows p
WHERE s.email = 'clinician@demo.test' AND p.email = 'patient@demo.test';
COMMIT;
SQL
fi

patient_ids=$(psql -X -q -d "$conninfo" -tA -c \
    "SELECT '  ' || rpad(p.display_name, 22) || p.id FROM patients p
     JOIN organisations o ON o.id = p.org_id
     WHERE o.name = 'Demo Clinic' ORDER BY p.display_name")

cat <<EOM

The local stack is running.

  Web console   $base/
  REST API      $base/api/v1/     (docs/api.md)
  Janus         $base/janus       (WebSocket, docs/plugin.md)

Demo organisation "Demo Clinic", password for everyone: $password

  admin@demo.test         admin
  supervisor@demo.test    supervisor
  coordinator@demo.test   coordinator
  clinician@demo.test     clinician, assigned to Pat Patient
  clinician2@demo.test    clinician, no patients
  patient@demo.test       patient Pat Patient (SMS-capable mobile)
  patient2@demo.test      patient Pia Patientin

Patient ids (the call page's "Patient id" field):
$patient_ids

A video call in the browser: open $base/ in one tab, log in as
clinician@demo.test and start a video call with Pat Patient; log in as
patient@demo.test in a second tab and join.

Try:  curl -s $base/api/v1/auth/login \\
        -d '{"email":"clinician@demo.test","password":"$password"}'

Stop it with: make stop
EOM
