use chrono::{TimeZone, Utc};

use super::*;

#[test]
fn the_request_id_is_found_at_the_start_of_requests_and_replies() {
    let request = encode(&Request {
        id: 42,
        body: ConsoleRequest::Logout,
    })
    .expect("encode");
    assert_eq!(envelope_id(&request), Some(42));
    let reply = encode(&HubToConsole::Reply {
        id: 7,
        result: Ok(ConsoleReply::Done),
    })
    .expect("encode");
    assert_eq!(envelope_id(&reply), Some(7));
    let event = encode(&HubToConsole::Event {
        event: HubEvent::Resync,
    })
    .expect("encode");
    assert_eq!(envelope_id(&event), None);
    assert_eq!(envelope_id("{\"id\":"), None);
    assert_eq!(envelope_id("not json"), None);
}

fn round_trip<T>(value: &T)
where
    T: serde::Serialize + for<'a> serde::Deserialize<'a> + PartialEq + std::fmt::Debug,
{
    let text = encode(value).expect("encode");
    let back: T = decode(&text).expect("decode");
    assert_eq!(&back, value, "round trip changed the value: {text}");
}

fn workstation() -> WorkstationInfo {
    let t = Utc
        .with_ymd_and_hms(2026, 11, 22, 9, 30, 0)
        .single()
        .expect("valid time");
    WorkstationInfo {
        id: "ws_abc".into(),
        client_id: "cl_1".into(),
        client_name: "Acme".into(),
        hostname: "reception-pc".into(),
        os: "Debian 12".into(),
        user: "alice".into(),
        screen: Some(ScreenSize {
            width: 1920,
            height: 1080,
        }),
        agent_version: "0.1.0".into(),
        presence: Presence::InSession,
        last_seen: t,
        enrolled_at: t,
        unattended: Default::default(),
        requires: Default::default(),
        otp_required: false,
    }
}

#[test]
fn console_requests_round_trip() {
    let requests = vec![
        ConsoleRequest::Login {
            version: PROTOCOL_VERSION,
            user: "ann".into(),
            password: "pw".into(),
            code: Some("123456".into()),
            device: Some("dev-token".into()),
        },
        ConsoleRequest::TwoFactorConfirm {
            code: "654321".into(),
        },
        ConsoleRequest::SetUserTwoFactor {
            user: "bob".into(),
            required: true,
            password: "pw".into(),
        },
        ConsoleRequest::ResetUserTwoFactor {
            user: "bob".into(),
            password: "pw".into(),
        },
        ConsoleRequest::SearchAudit {
            page: Default::default(),
            query: crate::protocol::AuditQuery {
                actor: Some("ann".into()),
                kind: Some("login".into()),
                ..Default::default()
            },
            limit: 10,
            before: None,
        },
        ConsoleRequest::Resume {
            version: PROTOCOL_VERSION,
            token: "t".into(),
        },
        ConsoleRequest::Logout,
        ConsoleRequest::ListClients {
            page: Default::default(),
        },
        ConsoleRequest::AddClient {
            name: "Acme \"quoted\" ünïcode".into(),
        },
        ConsoleRequest::CreateLink {
            client: "cl_1".into(),
            valid_days: Some(3),
        },
        ConsoleRequest::CreateLink {
            client: "cl_1".into(),
            valid_days: None,
        },
        ConsoleRequest::ListLinks {
            page: Default::default(),
            client: "cl_1".into(),
        },
        ConsoleRequest::RevokeLink {
            link: "ln_1".into(),
        },
        ConsoleRequest::ListWorkstations {
            client: None,
            filter: None,
            page: Default::default(),
        },
        ConsoleRequest::ListAudit {
            page: Default::default(),
            limit: 50,
            before: Some(10),
        },
    ];
    for (i, body) in requests.into_iter().enumerate() {
        round_trip(&Request {
            id: i as u64 + 1,
            body,
        });
    }
}

#[test]
fn hub_to_console_round_trip() {
    let t = Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .expect("valid time");
    let user = UserInfo {
        id: "us_1".into(),
        name: "ann".into(),
        email: "ann@example.com".into(),
        role: Role::Admin,
        team_id: "tm_1".into(),
        team: "Desk".into(),
    };
    let messages = vec![
        HubToConsole::Reply {
            id: 7,
            result: Ok(ConsoleReply::LoggedIn {
                token: "tok".into(),
                expires_at: t,
                user: user.clone(),
            }),
        },
        HubToConsole::Reply {
            id: 8,
            result: Ok(ConsoleReply::Resumed { user }),
        },
        HubToConsole::Reply {
            id: 9,
            result: Ok(ConsoleReply::Workstations {
                next: None,
                total: None,
                workstations: vec![workstation()],
            }),
        },
        HubToConsole::Reply {
            id: 10,
            result: Ok(ConsoleReply::Link {
                link: LinkInfo {
                    id: "ln_1".into(),
                    client_id: "cl_1".into(),
                    created_at: t,
                    expires_at: t,
                    revoked: false,
                    uses: 2,
                },
                url: "tether://h:1/enrol/x?fp=SHA256:00".into(),
            }),
        },
        HubToConsole::Reply {
            id: 11,
            result: Ok(ConsoleReply::Audit {
                next: None,
                total: None,
                records: vec![AuditRecord {
                    id: 1,
                    at: t,
                    actor: "ann".into(),
                    actor_email: Some("ann@example.com".into()),
                    team_id: Some("tm_1".into()),
                    action: "login.ok".into(),
                    target: None,
                    detail: serde_json::json!({"from": "127.0.0.1"}),
                    prev_hash: "0".repeat(64),
                    hash: "f".repeat(64),
                }],
            }),
        },
        HubToConsole::Reply {
            id: 12,
            result: Err(ProtocolError {
                code: ErrorCode::RateLimited,
                message: "wait".into(),
                retry_after_secs: Some(4),
                refusal: None,
            }),
        },
        HubToConsole::Reply {
            id: 13,
            result: Err(ProtocolError {
                code: ErrorCode::Forbidden,
                message: "wrong".into(),
                retry_after_secs: None,
                refusal: Some(Refusal::WrongSecret),
            }),
        },
        HubToConsole::Event {
            event: HubEvent::Workstation {
                workstation: workstation(),
            },
        },
        HubToConsole::Event {
            event: HubEvent::Client {
                client: ClientInfo {
                    id: "c".into(),
                    name: "n".into(),
                    created_at: t,
                },
            },
        },
        HubToConsole::Error {
            error: ProtocolError::bad_request("malformed"),
        },
    ];
    for m in &messages {
        round_trip(m);
    }
}

#[test]
fn agent_messages_round_trip() {
    let report = WorkstationReport {
        hostname: "h".into(),
        os: "Linux".into(),
        user: "u".into(),
        screen: None,
        agent_version: "0.1.0".into(),
    };
    round_trip(&Request {
        id: 1,
        body: AgentRequest::Enrol {
            version: PROTOCOL_VERSION,
            token: "t".into(),
            report: report.clone(),
        },
    });
    round_trip(&Request {
        id: 2,
        body: AgentRequest::Hello {
            version: PROTOCOL_VERSION,
            workstation_id: "ws".into(),
            key: "k".into(),
            report: report.clone(),
        },
    });
    round_trip(&Request {
        id: 3,
        body: AgentRequest::Report { report },
    });
    round_trip(&HubToAgent::Reply {
        id: 1,
        result: Ok(AgentReply::Enrolled {
            workstation_id: "ws".into(),
            key: "k".into(),
            client_name: "c".into(),
            defaults: SecretRequirements {
                passcode: true,
                password: false,
            },
        }),
    });
    round_trip(&HubToAgent::Reply {
        id: 2,
        result: Err(ProtocolError::invalid_credentials()),
    });
}

#[test]
fn stream_messages_round_trip_with_stable_names() {
    round_trip(&HubToAgent::Ack { stream: 3, seq: 9 });
    round_trip(&HubToAgent::Dropped { stream: 3, seq: 9 });
    round_trip(&Request {
        id: 4,
        body: AgentRequest::StreamEnded {
            stream: 3,
            reason: "the screen source stopped".into(),
        },
    });
    round_trip(&HubToConsole::Event {
        event: HubEvent::StreamEnded {
            stream: 3,
            reason: "the screen source stopped".into(),
        },
    });
    assert_eq!(
        encode(&HubToAgent::Dropped { stream: 3, seq: 9 }).expect("encode"),
        r#"{"type":"dropped","stream":3,"seq":9}"#
    );
    assert_eq!(
        encode(&HubEvent::StreamEnded {
            stream: 3,
            reason: "gone".into()
        })
        .expect("encode"),
        r#"{"type":"stream_ended","stream":3,"reason":"gone"}"#
    );
}

#[test]
fn decode_refuses_oversized_and_malformed() {
    let big = format!(
        "{{\"id\":1,\"body\":{{\"type\":\"add_client\",\"name\":\"{}\"}}}}",
        "x".repeat(MAX_CONTROL_MESSAGE)
    );
    let err = decode::<Request<ConsoleRequest>>(&big).expect_err("oversized must fail");
    assert_eq!(err.code, ErrorCode::TooLarge);

    for bad in [
        "",
        "{",
        "null",
        "{\"id\":1}",
        "{\"id\":1,\"body\":{\"type\":\"nope\"}}",
        "[1,2,3]",
    ] {
        let err = decode::<Request<ConsoleRequest>>(bad).expect_err(bad);
        assert_eq!(err.code, ErrorCode::BadRequest, "{bad}");
    }
}

#[test]
fn wire_names_are_stable() {
    let text = encode(&Request {
        id: 5,
        body: ConsoleRequest::ListClients {
            page: Default::default(),
        },
    })
    .expect("encode");
    assert_eq!(text, r#"{"id":5,"body":{"type":"list_clients"}}"#);
    let text = encode(&Presence::InSession).expect("encode");
    assert_eq!(text, r#""in_session""#);
}

#[test]
fn enrolment_link_round_trips_and_rejects_bad_links() {
    let link = EnrolmentLink {
        hub: "hub.example.com:7443".into(),
        token: "AbC-123_x".into(),
        fingerprint: format!("SHA256:{}", "ab".repeat(32)),
    };
    let text = link.to_string();
    assert!(text.starts_with("tether://hub.example.com:7443/enrol/AbC-123_x?fp=SHA256:"));
    assert_eq!(text.parse::<EnrolmentLink>(), Ok(link.clone()));
    assert_eq!(link.hub_url(), "wss://hub.example.com:7443");

    assert_eq!(
        "https://x/enrol/t?fp=a".parse::<EnrolmentLink>(),
        Err(LinkError::Scheme)
    );
    assert_eq!(
        "tether://h:1/enrol/?fp=a".parse::<EnrolmentLink>(),
        Err(LinkError::Token)
    );
    assert_eq!(
        "tether://h:1/enrol/t%20x?fp=a".parse::<EnrolmentLink>(),
        Err(LinkError::Token)
    );
    assert_eq!(
        "tether:///enrol/t?fp=a".parse::<EnrolmentLink>(),
        Err(LinkError::Hub)
    );
    assert_eq!(
        "tether://h:1/enrol/t".parse::<EnrolmentLink>(),
        Err(LinkError::Fingerprint)
    );
}

#[test]
fn unattended_state_machine_follows_the_rules() {
    use AccessEvent::*;
    use UnattendedState::*;
    let allowed = [
        (None, Request, Requested),
        (Denied, Request, Requested),
        (Withdrawn, Request, Requested),
        (Revoked, Request, Requested),
        (Requested, Grant, Granted),
        (Requested, Deny, Denied),
        (Granted, Withdraw, Withdrawn),
        (Requested, Withdraw, Withdrawn),
        (Granted, Revoke, Revoked),
    ];
    for from in UnattendedState::ALL {
        for event in [Request, Grant, Deny, Withdraw, Revoke] {
            let expected = allowed
                .iter()
                .find(|(f, e, _)| *f == from && *e == event)
                .map(|(_, _, to)| *to);
            match (from.apply(event), expected) {
                (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} + {event:?}"),
                (Err(why), Option::None) => assert!(!why.is_empty()),
                (got, want) => panic!("{from:?} + {event:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn access_messages_round_trip_and_secrets_stay_out_of_debug() {
    let t = Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .expect("valid time");
    let session = SessionInfo {
        id: "se_1".into(),
        workstation_id: "ws_1".into(),
        hostname: "pc".into(),
        technician: TechnicianRef {
            name: "ann".into(),
            email: "ann@example.com".into(),
        },
        method: AuthMethod::Unattended,
        secrets: vec![SecretKind::Passcode],
        view_only: true,
        started_at: t,
        ended_at: Some(t),
        end_reason: Some("withdrawn".into()),
    };
    round_trip(&Request {
        id: 1,
        body: ConsoleRequest::Connect {
            workstation: "ws_1".into(),
            secret: Some("K7P-4QX-9MZ".into()),
            view_only: true,
            otp: None,
        },
    });
    round_trip(&HubToConsole::Event {
        event: HubEvent::Session {
            session: session.clone(),
        },
    });
    round_trip(&HubToAgent::ConnectAttempt {
        attempt: 9,
        technician: session.technician.clone(),
        secret: None,
        view_only: false,
        support_credentials: true,
    });
    round_trip(&Request {
        id: 2,
        body: AgentRequest::ConnectAnswer {
            attempt: 9,
            outcome: ConnectOutcome::Refused {
                reason: Refusal::WrongSecret,
            },
        },
    });
    round_trip(&Request {
        id: 3,
        body: AgentRequest::Policy {
            policy: AgentPolicy {
                unattended: UnattendedState::Granted,
                requires: SecretRequirements {
                    passcode: true,
                    password: true,
                },
            },
        },
    });
    let login = ConsoleRequest::Login {
        version: 1,
        user: "ann".into(),
        password: "hunter2-hunter2".into(),
        code: Some("918273".into()),
        device: Some("device-secret-5150".into()),
    };
    assert!(
        !format!("{login:?}").contains("918273"),
        "a 2FA code must not show in Debug output"
    );
    assert!(
        !format!("{login:?}").contains("hunter2"),
        "a password must not show in Debug output"
    );
    assert!(
        !format!("{login:?}").contains("5150"),
        "a device token must not show in Debug output"
    );
}

#[test]
fn the_enrolment_reply_prints_neither_the_secret_nor_the_uri_that_carries_it() {
    let reply = ConsoleReply::TwoFactorEnrolment {
        uri: "otpauth://totp/Tether:ann?secret=JBSWY3DPEHPK3PXPJBSWY3DP&issuer=Tether".into(),
        secret: "JBSWY3DPEHPK3PXPJBSWY3DP".into(),
    };
    let shown = format!("{reply:?}");
    assert!(!shown.contains("JBSWY3DP"), "{shown}");
    // On the wire both travel in full.
    let json = serde_json::to_string(&reply).expect("json");
    assert!(json.contains("secret=JBSWY3DPEHPK3PXPJBSWY3DP"));
}
