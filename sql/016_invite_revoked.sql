-- Revoked invites in the invitee status (PRODUCT 17): GET
-- /sessions/{id}/invites tells whether the invitee's latest link was
-- revoked, when and why.  Links are revoked in three places, each of which
-- now stores its reason: DELETE /sessions/{id}/invites/{invite_id}
-- ("revoked", below), a resend ("resent", 012) and a new scheduled time
-- ("rescheduled", 012).  A change of the access level revokes no link
-- (a guest link is refused at redeem while the level is not invitation,
-- and works again if it goes back), so there is no reason for it.


-- th_op_invite_revoke() of 008, storing the reason; revoking a revoked
-- link again keeps its first time and reason.
CREATE OR REPLACE FUNCTION th_op_invite_revoke(req jsonb, me th_caller)
RETURNS th_answer
LANGUAGE plpgsql AS $$
DECLARE
    s  sessions := th_invite_session(me, req ->> 'id');
BEGIN
    UPDATE invites x SET revoked_at = COALESCE(x.revoked_at, now()),
                         revoked_reason = CASE WHEN x.revoked_at IS NULL
                                               THEN 'revoked'
                                               ELSE x.revoked_reason END
        WHERE x.id = th_uuid(req ->> 'id2', 'invite')
          AND x.session_id = s.id;
    IF NOT FOUND THEN
        PERFORM th_raise('404', 'No such invite.');
    END IF;
    RETURN th_ok(204, NULL);
END
$$;

-- Links revoked before: only DELETE revoked without a reason.
UPDATE invites SET revoked_reason = 'revoked'
    WHERE revoked_at IS NOT NULL AND revoked_reason IS NULL;

-- th_invitee_json() of 012 with revoked_at and revoked_reason of the
-- invitee's latest invite.
CREATE OR REPLACE FUNCTION th_invitee_json(i invites) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_tz      text;
    v_joined  timestamptz := th_invitee_joined(i);
    v_sent    timestamptz;
BEGIN
    SELECT o.time_zone INTO v_tz FROM organisations o WHERE o.id = i.org_id;
    v_sent := CASE WHEN i.held THEN NULL
                   WHEN i.channel = 'link' THEN i.created_at
                   ELSE (SELECT n.sent_at FROM notifications n
                         WHERE n.id = i.notification_id) END;
    RETURN jsonb_build_object(
        'invite_id', i.id,
        'invitee', jsonb_strip_nulls(jsonb_build_object(
            'display_name', i.invitee_name, 'patient_id', i.patient_id,
            'contact', i.contact, 'language', i.language)),
        'channel', i.channel,
        'last_sent_at', th_ts(v_sent),
        'delivery', th_delivery_json(i.notification_id, i.held),
        'expires_at', th_ts(i.expires_at),
        'joined', v_joined IS NOT NULL,
        'joined_at', th_ts(v_joined),
        'revoked_at', th_ts(i.revoked_at),
        'revoked_reason', i.revoked_reason,
        'third_parties', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                'display_name', t ->> 'display_name',
                'relation', t ->> 'relation', 'channel', t ->> 'channel',
                'delivery', th_delivery_json(
                    (t ->> 'notification_id')::uuid, i.held))), '[]')
            FROM jsonb_array_elements(i.third_parties) t),
        'message', CASE
            WHEN v_joined IS NOT NULL THEN NULL
            WHEN v_sent IS NULL THEN
                'The client has not joined the session yet. The invite has '
                'not been sent yet.'
            ELSE 'The client has not joined the session yet. The last '
                 'invite was sent at '
                 || to_char(v_sent AT TIME ZONE v_tz, 'HH24:MI') || '.'
            END);
END
$$;
