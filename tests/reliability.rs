//! The client against a failing server: 401 then recovery, 500 on a POST, malformed
//! JSON, a slow server, a dropped connection, retries for the idempotent calls.

mod common;

use awareid_emulator::{EmulatorConfig, Fault, FaultKind};
use common::*;
use facecapture::awareid::AwareIdError;
use facecapture::awareid::client::MOST_EXCHANGES;
use facecapture::awareid::wire::*;
use facecapture::config::Encryption;
use facecapture::workflow::FlowError;
use std::time::{Duration, Instant};

fn fault(call: &str, kind: FaultKind) -> Fault {
    Fault {
        call: Some(call.into()),
        kind,
        times: 1,
    }
}

fn server_error(e: FlowError) -> AwareIdError {
    match e {
        FlowError::Server(e) => e,
        other => panic!("expected a server error, got {other}"),
    }
}

#[test]
fn expired_token_gets_401_then_one_refetch_and_the_flow_completes() {
    let s = start();
    let ctx = ctx(&s, Encryption::Envelope, &no_progress);
    // The token expires just before addDevice is handled.
    s.emulator
        .inject(fault("addDevice", FaultKind::ExpireToken));
    let out = enroll_astronaut(&s.client, &ctx, "alice").expect("recovers");
    assert_eq!(out.enrollment_status, STATUS_COMPLETE);
    let trail: Vec<(String, u16)> = s
        .emulator
        .requests()
        .into_iter()
        .map(|r| (r.call.unwrap_or_default(), r.status))
        .collect();
    let trail: Vec<(&str, u16)> = trail.iter().map(|(c, st)| (c.as_str(), *st)).collect();
    assert_eq!(
        trail,
        [
            ("token", 200),
            ("getPublicKey", 200),
            ("enroll", 200),
            ("addDevice", 401),
            ("token", 200),
            ("addDevice", 200),
            ("addFace", 200)
        ]
    );
}

#[test]
fn a_second_401_is_not_retried_again() {
    let s = start();
    s.emulator.inject(Fault {
        call: Some("enroll".into()),
        kind: FaultKind::ExpireToken,
        times: 2,
    });
    let ctx = ctx(&s, Encryption::None, &no_progress);
    let err = server_error(enroll_astronaut(&s.client, &ctx, "a").expect_err("401"));
    assert!(
        matches!(&err, AwareIdError::Rejected { status: 401, code, .. } if code == "TOKEN_EXPIRED"),
        "{err}"
    );
    assert_eq!(calls(&s.emulator), ["token", "enroll", "token", "enroll"]);
}

#[test]
fn a_refused_token_is_dropped_even_when_its_refetch_fails() {
    let s = start();
    let ctx = ctx(&s, Encryption::None, &no_progress);
    // A token is cached; then it is refused at enroll, and every attempt to fetch
    // a new one fails.
    s.client.ensure_token().expect("token");
    s.emulator.inject(fault("enroll", FaultKind::ExpireToken));
    s.emulator.inject(Fault {
        call: Some("token".into()),
        kind: FaultKind::Status { code: 503 },
        times: 3,
    });
    let err = server_error(enroll_astronaut(&s.client, &ctx, "a").expect_err("no token"));
    assert!(
        matches!(err, AwareIdError::Unavailable { call: "token", .. }),
        "{err}"
    );
    s.emulator.clear_requests();
    // The next operation fetches a token first: the refused one is not sent again
    // to pay for one more 401.
    enroll_astronaut(&s.client, &ctx, "a").expect("the server is back");
    let trail = calls(&s.emulator);
    assert_eq!(
        trail.first().map(String::as_str),
        Some("token"),
        "{trail:?}"
    );
    assert!(
        s.emulator.requests().iter().all(|r| r.status != 401),
        "a 401 after the failed refetch: {trail:?}"
    );
}

#[test]
fn http_500_on_a_post_is_not_retried_and_says_unavailable() {
    let s = start();
    s.emulator
        .inject(fault("addDevice", FaultKind::Status { code: 500 }));
    let ctx = ctx(&s, Encryption::None, &no_progress);
    let err = server_error(enroll_astronaut(&s.client, &ctx, "a").expect_err("500"));
    assert!(
        matches!(
            err,
            AwareIdError::Unavailable {
                call: "addDevice",
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("HTTP 500") && text.contains("INJECTED_FAULT"),
        "{text}"
    );
    assert_eq!(
        calls(&s.emulator),
        ["token", "enroll", "addDevice"],
        "the POST is sent once"
    );
}

#[test]
fn token_and_public_key_are_retried_with_backoff() {
    let s = start();
    s.emulator
        .inject(fault("token", FaultKind::Status { code: 503 }));
    s.emulator
        .inject(fault("getPublicKey", FaultKind::DropConnection));
    let ctx = ctx(&s, Encryption::Envelope, &no_progress);
    enroll_astronaut(&s.client, &ctx, "a").expect("retries succeed");
    assert_eq!(
        calls(&s.emulator),
        [
            "token",
            "token",
            "getPublicKey",
            "getPublicKey",
            "enroll",
            "addDevice",
            "addFace"
        ]
    );
}

#[test]
fn token_retries_give_up_after_three_attempts() {
    let s = start();
    s.emulator.inject(Fault {
        call: Some("token".into()),
        kind: FaultKind::Status { code: 502 },
        times: 5,
    });
    let err = s.client.ensure_token().expect_err("unavailable");
    assert!(
        matches!(err, AwareIdError::Unavailable { call: "token", .. }),
        "{err}"
    );
    assert_eq!(calls(&s.emulator), ["token", "token", "token"]);
}

#[test]
fn wrong_client_secret_is_rejected_not_retried() {
    let s = start();
    let mut server = s.server.clone();
    server.client_secret = facecapture::secret::Secret::new("wrong");
    let client = facecapture::awareid::AwareIdClient::new(&server, &s.http).expect("client");
    let err = client.ensure_token().expect_err("rejected");
    assert!(
        matches!(&err, AwareIdError::Rejected { status: 401, code, .. } if code == "INVALID_CLIENT"),
        "{err}"
    );
    assert_eq!(calls(&s.emulator), ["token"]);
}

#[test]
fn malformed_json_is_named() {
    let s = start();
    s.emulator.inject(fault("enroll", FaultKind::MalformedJson));
    let ctx = ctx(&s, Encryption::None, &no_progress);
    let err = server_error(enroll_astronaut(&s.client, &ctx, "a").expect_err("bad"));
    assert!(
        matches!(err, AwareIdError::Malformed { call: "enroll", .. }),
        "{err}"
    );
}

#[test]
fn a_4xx_carries_awareid_error_code_and_message() {
    let s = start();
    let err = s
        .client
        .authenticate(&AuthenticateRequest {
            registration_code: "NOPE00".into(),
            device_id: "dev".into(),
        })
        .expect_err("unknown code");
    match err {
        AwareIdError::Rejected {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(status, 400);
            assert_eq!(code, "INVALID_REGISTRATION_CODE");
            assert!(message.contains("registrationCode"), "{message}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_slow_server_past_the_timeout_is_unavailable() {
    let s = start_with(EmulatorConfig::default(), Duration::from_secs(1));
    s.client.ensure_token().expect("token");
    s.emulator
        .inject(fault("enroll", FaultKind::Delay { ms: 2500 }));
    let started = Instant::now();
    let ctx = ctx(&s, Encryption::None, &no_progress);
    let err = server_error(enroll_astronaut(&s.client, &ctx, "a").expect_err("slow"));
    assert!(
        matches!(err, AwareIdError::Unavailable { call: "enroll", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up at the timeout, not after the answer"
    );
}

#[test]
fn a_dropped_connection_on_a_post_is_unavailable() {
    let s = start();
    s.emulator
        .inject(fault("addFace", FaultKind::DropConnection));
    let ctx = ctx(&s, Encryption::Envelope, &no_progress);
    let err = server_error(enroll_astronaut(&s.client, &ctx, "a").expect_err("drop"));
    assert!(
        matches!(
            err,
            AwareIdError::Unavailable {
                call: "addFace",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        calls(&s.emulator)
            .iter()
            .filter(|c| *c == "addFace")
            .count(),
        1
    );
}

#[test]
fn nothing_listening_is_unavailable() {
    let s = start();
    let mut server = s.server.clone();
    server.base_url = "https://127.0.0.1:9".into();
    let client = facecapture::awareid::AwareIdClient::new(&server, &s.http).expect("client");
    let err = client.ensure_token().expect_err("refused");
    assert!(
        matches!(err, AwareIdError::Unavailable { call: "token", .. }),
        "{err}"
    );
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let s = start();
    let http =
        facecapture::awareid::HttpSettings::new(Duration::from_secs(5), None).expect("settings");
    let client = facecapture::awareid::AwareIdClient::new(&s.server, &http).expect("client");
    let err = client.ensure_token().expect_err("untrusted");
    assert!(matches!(err, AwareIdError::Unavailable { .. }), "{err}");
    assert!(
        s.emulator.requests().is_empty(),
        "no request got through TLS"
    );
}

#[test]
fn the_token_is_renewed_before_it_expires() {
    let cfg = EmulatorConfig {
        token_ttl: Duration::from_secs(100),
        ..EmulatorConfig::default()
    };
    let s = start_with(cfg, Duration::from_secs(10));
    s.client.ensure_token().expect("token");
    s.client.ensure_token().expect("cached");
    assert_eq!(calls(&s.emulator), ["token"], "cached while fresh");
    // 10% before expiry (at 90 s of 100) the client fetches a new one by itself,
    // while the old one is still good: no 401. (The client's clock is moved on;
    // the server's token is still valid.)
    s.client.pretend_elapsed(Duration::from_secs(91));
    s.client
        .public_key()
        .expect("public key with a renewed token");
    let reqs = s.emulator.requests();
    let trail: Vec<_> = reqs
        .iter()
        .map(|r| (r.call.clone().unwrap_or_default(), r.status))
        .collect();
    assert_eq!(
        trail,
        [
            ("token".into(), 200),
            ("token".into(), 200),
            ("getPublicKey".into(), 200)
        ]
    );
}

/// Keeping warm (issue 30): a token due for renewal before the next turn is
/// renewed with the one in force kept until the new one is in hand, and the
/// public key comes with it; an idle connection gets one getPublicKey; nothing
/// else is called. A server's short-lived tokens are renewed twice a lifetime,
/// not in a loop.
#[test]
fn keeping_warm_renews_the_token_ahead_and_keeps_the_connection_with_one_call() {
    use facecapture::awareid::Warmed;
    let every = Duration::from_secs(45);
    let s = start_with(
        EmulatorConfig {
            token_ttl: Duration::from_secs(300),
            ..EmulatorConfig::default()
        },
        Duration::from_secs(10),
    );
    // At the start: nothing in hand, so the token and the key.
    assert_eq!(s.client.keep_warm(every).expect("turn"), Warmed::Renewed);
    assert_eq!(calls(&s.emulator), ["token", "getPublicKey"]);
    assert!(s.client.cached_public_key().is_some(), "the key is in hand");
    // Just after: nothing due, and the next turn when the connection will have
    // been idle for `every` (the token is renewed 270 - 45 s after it came).
    assert_eq!(s.client.keep_warm(every).expect("turn"), Warmed::Nothing);
    let next = s.client.next_warm(every);
    assert!(next > Duration::from_secs(40) && next <= every, "{next:?}");
    assert_eq!(calls(&s.emulator).len(), 2, "no call when none is due");
    // Idle for `every`: one getPublicKey.
    s.client.pretend_elapsed(every);
    assert_eq!(s.client.keep_warm(every).expect("turn"), Warmed::Called);
    assert_eq!(
        calls(&s.emulator),
        ["token", "getPublicKey", "getPublicKey"]
    );
    // Within 45 s of the renewal point: a new token and the key with it.
    s.client.pretend_elapsed(Duration::from_secs(190));
    assert_eq!(s.client.keep_warm(every).expect("turn"), Warmed::Renewed);
    assert_eq!(
        calls(&s.emulator)[3..],
        ["token".to_owned(), "getPublicKey".to_owned()]
    );
    // A renewal that fails leaves the token in force: a flow still uses it.
    s.client.pretend_elapsed(Duration::from_secs(230));
    s.emulator.inject(Fault {
        call: Some("token".into()),
        kind: FaultKind::Status { code: 503 },
        times: 3,
    });
    let before = calls(&s.emulator).len();
    s.client.keep_warm(every).expect_err("the token call fails");
    s.client.ensure_token().expect("the token in force");
    s.client.public_key().expect("a call with it");
    let after = calls(&s.emulator);
    assert_eq!(
        after[before..].iter().filter(|c| *c == "token").count(),
        3,
        "the failed renewal's attempts only: {after:?}"
    );

    // Tokens of 30 s: renewed when 13.5 s old (half their 27 s of use), so the
    // next turn is 13.5 s on, not at once.
    let short = start_with(
        EmulatorConfig {
            token_ttl: Duration::from_secs(30),
            ..EmulatorConfig::default()
        },
        Duration::from_secs(10),
    );
    assert_eq!(
        short.client.keep_warm(every).expect("turn"),
        Warmed::Renewed
    );
    let next = short.client.next_warm(every);
    assert!(
        next > Duration::from_secs(12) && next <= Duration::from_millis(13_500),
        "{next:?}"
    );
    assert_eq!(
        short.client.keep_warm(every).expect("turn"),
        Warmed::Nothing
    );

    // A QR session's client keeps nothing and calls nothing.
    let qr = facecapture::awareid::AwareIdClient::for_qr_host(
        s.emulator.base_url().trim_start_matches("https://"),
        "key",
        &s.http,
    );
    let before = calls(&s.emulator).len();
    assert_eq!(qr.keep_warm(every).expect("turn"), Warmed::Nothing);
    assert_eq!(calls(&s.emulator).len(), before);
}

/// A token answer whose `expires_in` is near 2^64 used to panic the client
/// ("overflow when adding duration to instant"): a lifetime beyond a day is
/// taken as a day, and the token is used.
#[test]
fn a_token_lifetime_near_two_to_the_64_is_taken_as_a_day() {
    let s = start();
    s.emulator.inject(fault(
        "token",
        FaultKind::Body {
            body: r#"{"access_token": "t0k3n-from-a-hostile-server", "expires_in": 18446744073709551615, "token_type": "Bearer"}"#.into(),
        },
    ));
    s.client
        .ensure_token()
        .expect("a token with an absurd lifetime");
    s.client.ensure_token().expect("cached");
    assert_eq!(calls(&s.emulator), ["token"], "cached");
    // A day later it is renewed, as a token of a day would be.
    s.client.pretend_elapsed(Duration::from_secs(24 * 3600));
    s.client.ensure_token().expect("renewed");
    assert_eq!(calls(&s.emulator), ["token", "token"]);
}

/// A field of the wrong type is named with the type found, never its value: a
/// registration code or token sent as a number would otherwise reach the D-Bus
/// error and the journal's REASON (serde_json quotes the value).
#[test]
fn a_wrong_type_is_named_without_its_value() {
    let s = start();
    let ctx = ctx(&s, Encryption::None, &no_progress);
    s.emulator.inject(fault(
        "addFace",
        FaultKind::Body {
            body: r#"{"registrationCode": 987654321987654321, "enrollmentStatus": 2, "livenessResult": true}"#.into(),
        },
    ));
    let err = server_error(enroll_astronaut(&s.client, &ctx, "vera").expect_err("bad"));
    let text = err.to_string();
    assert!(
        matches!(
            err,
            AwareIdError::Malformed {
                call: "addFace",
                ..
            }
        ),
        "{text}"
    );
    assert!(
        !text.contains("987654321"),
        "the value is in the error: {text}"
    );
    assert!(
        text.contains("registrationCode: invalid type: integer, expected a string"),
        "{text}"
    );

    s.emulator.inject(fault(
        "authenticate",
        FaultKind::Body {
            body: r#"{"authToken": ["secret-token-value"], "requiredChecks": []}"#.into(),
        },
    ));
    let e = s
        .client
        .authenticate(&AuthenticateRequest {
            registration_code: "whatever".into(),
            device_id: s.terminal.device_id.clone(),
        })
        .expect_err("bad");
    let text = e.to_string();
    assert!(!text.contains("secret-token-value"), "{text}");
    assert!(text.contains("authToken: invalid type: sequence"), "{text}");
}

/// The daemon's watchdog grace comes from the longest one client call can take
/// (`client::longest_call`): getPublicKey, with every attempt fetching a token
/// (the server's tokens live no time, so none stays cached) that times out
/// twice, the call answered 401, a second token fetch timing out twice, and the
/// call timing out. That makes MOST_EXCHANGES exchanges, and no more.
#[test]
fn the_longest_call_is_getpublickey_around_token_fetches_and_no_longer() {
    let cfg = EmulatorConfig {
        token_ttl: Duration::ZERO,
        ..EmulatorConfig::default()
    };
    let s = start_with(cfg, Duration::from_millis(300));
    let slow = FaultKind::Delay { ms: 1200 };
    for _ in 0..3 {
        for _ in 0..2 {
            s.emulator.inject(Fault {
                call: Some("token".into()),
                kind: slow.clone(),
                times: 2,
            });
            s.emulator
                .inject(fault("token", FaultKind::Delay { ms: 0 }));
        }
        s.emulator
            .inject(fault("getPublicKey", FaultKind::Status { code: 401 }));
        s.emulator.inject(fault("getPublicKey", slow.clone()));
    }
    let err = s.client.public_key().expect_err("every attempt fails");
    assert!(
        matches!(
            err,
            AwareIdError::Unavailable {
                call: "getPublicKey",
                ..
            }
        ),
        "{err}"
    );
    let attempt = [
        "token",
        "token",
        "token",
        "getPublicKey",
        "token",
        "token",
        "token",
        "getPublicKey",
    ];
    assert_eq!(s.emulator.arrived(), attempt.repeat(3));
    assert_eq!(s.emulator.arrived().len(), MOST_EXCHANGES as usize);
}
