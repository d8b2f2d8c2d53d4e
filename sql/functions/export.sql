-- GET /sessions/{id}/export.pdf (docs/features.md 31): what the PDF
-- shows, as one JSON document that the module lays out
-- (nginx-module/ngx_http_telehealth_export.c).  Times are the
-- organisation's local time, ready to print.
--
-- The current definition of each function (docs/sql.md): applied by
-- scripts/migrate.sh after the migrations, on every run.

-- A time as the export prints it.
CREATE OR REPLACE FUNCTION th_export_time(t timestamptz, v_zone text)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE v_zone, 'YYYY-MM-DD HH24:MI')
$$;

-- The display name of a participant id ("staff:<uuid>", "patient:<uuid>",
-- "guest:<invite id>"), while the session's content exists.
CREATE OR REPLACE FUNCTION th_export_name(v_session uuid, v_participant text)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        (SELECT st.display_name FROM staff st
          WHERE 'staff:' || st.id = v_participant),
        (SELECT pt.display_name FROM patients pt
          WHERE 'patient:' || pt.id = v_participant),
        (SELECT i.invitee_name FROM invites i
          WHERE i.session_id = v_session AND 'guest:' || i.id = v_participant),
        'Guest')
$$;

-- Chat messages, oldest first: [{"at", "author", "text", "attachments":
-- [{"name", "type", "path"}]}].  Chat's tables are read here; "path" is
-- the file's place for the module to read an image from (relative to the
-- files directory).
CREATE OR REPLACE FUNCTION th_export_messages(v_session uuid, v_zone text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
               'at', th_export_time(c.created_at, v_zone),
               'author', c.author_name,
               'text', NULLIF(c.body, ''),
               'attachments', CASE WHEN c.file_id IS NULL THEN '[]'::jsonb
                   ELSE jsonb_build_array(jsonb_build_object(
                       'name', CASE c.content_type
                                   WHEN 'application/pdf' THEN 'document.pdf'
                                   WHEN 'image/png' THEN 'image.png'
                                   ELSE 'image.jpg' END,
                       'type', c.content_type,
                       'path', c.file_id::text)) END)
             ORDER BY c.seq), '[]')
      FROM th_chat_export(v_session) c
$$;

-- Everyone on the session's list or in one of its calls, with the role
-- they had: [{"participant", "name", "role"}].
CREATE OR REPLACE FUNCTION th_export_participants(v_session uuid)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
               'participant', p.participant,
               'name', th_export_name(v_session, p.participant),
               'role', p.role) ORDER BY p.first, p.participant), '[]')
      FROM (SELECT x.participant, min(x.role) AS role, min(x.first) AS first
              FROM (SELECT CASE WHEN sp.staff_id IS NOT NULL
                                THEN 'staff:' || sp.staff_id
                                ELSE 'patient:' || sp.patient_id END
                               AS participant,
                           sp.role, s.created_at AS first
                      FROM session_participants sp
                      JOIN sessions s ON s.id = sp.session_id
                     WHERE sp.session_id = v_session
                    UNION ALL
                    SELECT cp.participant, cp.role, cp.joined_at
                      FROM calls c
                      JOIN call_participants cp ON cp.call_id = c.id
                     WHERE c.session_id = v_session) x
             GROUP BY x.participant) p
$$;

-- The export of {id} for a chair of it while its content exists: (200,
-- the document), or (404 | 403, a problem).  Audited.
CREATE OR REPLACE FUNCTION th_session_export(v_caller uuid, v_org uuid,
    v_type text, v_session uuid, v_addr text)
RETURNS TABLE (status integer, body text)
LANGUAGE plpgsql AS $$
DECLARE
    s       sessions;
    v_role  text;
    v_zone  text;
    v_org_name  text;
    v_started   timestamptz;
    v_ended     timestamptz;
BEGIN
    SELECT x.* INTO s FROM sessions x
     WHERE x.id = v_session AND x.org_id = v_org;
    SELECT sp.role INTO v_role FROM session_participants sp
     WHERE sp.session_id = v_session AND sp.staff_id = v_caller
       AND v_type = 'staff';
    IF s.id IS NULL OR v_role IS NULL THEN
        status := 404;
        body := jsonb_build_object('problem', 'not-found',
                                   'detail', 'No such session.')::text;
    ELSIF v_role <> 'chair' THEN
        status := 403;
        body := jsonb_build_object('problem', 'forbidden',
            'detail', 'Only a chair of the session can export it.')::text;
    ELSIF s.purged_at IS NOT NULL THEN
        status := 404;
        body := jsonb_build_object('problem', 'not-found',
            'detail', 'The content of this session has been deleted.')::text;
    ELSE
        SELECT o.time_zone, o.name INTO v_zone, v_org_name
          FROM organisations o WHERE o.id = s.org_id;
        SELECT min(c.started_at), max(c.ended_at) INTO v_started, v_ended
          FROM calls c WHERE c.session_id = s.id;
        status := 200;
        body := jsonb_build_object(
            'organisation', v_org_name,
            'time_zone', v_zone,
            'session', jsonb_build_object(
                'id', s.id, 'kind', s.kind, 'name', s.name,
                'state', s.state,
                'created', th_export_time(s.created_at, v_zone),
                'started', th_export_time(
                    COALESCE(v_started, s.scheduled_at, s.created_at),
                    v_zone),
                'ended', th_export_time(COALESCE(s.ended_at, v_ended),
                                        v_zone)),
            'participants', th_export_participants(s.id),
            'messages', th_export_messages(s.id, v_zone))::text;
    END IF;
    PERFORM th_session_audit(v_caller, v_org, v_type, v_session, v_addr,
                             'session_export', status);
    RETURN NEXT;
END
$$;
