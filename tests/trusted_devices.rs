//! Trusted devices (issue 11 point 5, OWASP's device cookies): a login presenting a device
//! token that logged in as that user before is checked ahead of a flood and is not held back
//! by the lock-out others build on the name. Alone in its test binary: one test holds the
//! process-wide password threads.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{ManualClock, PASSWORD, TestHub};
use tether::client::{ClientError, HubClient};
use tether::hub::Limits;
use tether::protocol::{ErrorCode, Role};
use tether::secrets::work::{self, Precedence};

/// The tests here take turns: one of them holds every password thread.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn login(
    hub: &TestHub,
    user: &str,
    password: &str,
    device: Option<&str>,
) -> Result<(), ClientError> {
    let (client, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");
    client
        .login_from_device(user, password, None, device)
        .await
        .map(|_| ())
}

fn code(result: Result<(), ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Hub(p)) => p.code,
        other => panic!("expected the hub to refuse, got {other:?}"),
    }
}

async fn until(what: &str, done: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test]
async fn a_trusted_device_is_answered_while_the_flood_queue_is_full_and_held() {
    let _turn = TURN.lock().await;
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Technician, "Desk").await;
    let device = tether::secrets::new_token().expect("token");
    login(&hub, "ann", PASSWORD, Some(&device))
        .await
        .expect("the first login makes the device trusted");
    // Stored only as its hash, bound to ann.
    let now = chrono::Utc::now();
    let kept = hub.hub.store().trusted_devices("ann", now).expect("read");
    assert_eq!(kept, [tether::secrets::hash_token(&device)]);
    assert!(
        hub.hub
            .store()
            .trusted_devices("bob", now)
            .expect("read")
            .is_empty()
    );
    // This address has failed lately: without the device its checks wait behind the flood.
    let wrong = login(&hub, "nobody", "wrong password!!", None).await;
    assert_eq!(code(wrong), ErrorCode::InvalidCredentials);

    // Every password thread held, and a flood of checks waiting behind them, held too.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let (hold, held) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut blockers = Vec::new();
    for _ in 0..cores {
        let (hold, held) = (hold.clone(), held.clone());
        blockers.push(tokio::spawn(work::bounded(move || {
            held.fetch_add(1, Ordering::SeqCst);
            while hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })));
    }
    until("every password thread held", || {
        held.load(Ordering::SeqCst) == cores
    })
    .await;
    let (flood_hold, flood_started) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicUsize::new(0)),
    );
    let refused = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..100 {
        let (hold, started, refused) = (flood_hold.clone(), flood_started.clone(), refused.clone());
        flood.push(tokio::spawn(async move {
            let run = work::bounded(move || {
                started.fetch_add(1, Ordering::SeqCst);
                while hold.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            if run.await.is_err() {
                refused.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Each flood check is queued, or refused once the queue is full.
    until("the flood queued", || {
        work::admitted(Precedence::Normal) + refused.load(Ordering::SeqCst) == cores + 100
    })
    .await;
    let queued = work::admitted(Precedence::Normal) - cores;
    assert!(queued >= cores, "a queue to wait behind");

    let trusted = {
        let (url, pin, device) = (hub.url.clone(), hub.pin(), device.clone());
        tokio::spawn(async move {
            let (client, _) = HubClient::connect(&url, pin).await.expect("connect");
            client
                .login_from_device("ann", PASSWORD, None, Some(&device))
                .await
                .map(|_| ())
        })
    };
    until("the trusted login's check queued", || {
        work::admitted(Precedence::Trusted) == 1
    })
    .await;
    hold.store(false, Ordering::SeqCst);
    let answer = tokio::time::timeout(Duration::from_secs(20), trusted)
        .await
        .expect("the trusted device's login is answered while the flood waits")
        .expect("task");
    answer.expect("logged in");
    let started = flood_started.load(Ordering::SeqCst);
    assert!(
        started <= cores,
        "{started} flood checks ran before the trusted login's"
    );
    assert_eq!(
        work::admitted(Precedence::Normal),
        queued,
        "the flood still waits"
    );

    flood_hold.store(false, Ordering::SeqCst);
    for t in blockers {
        t.await.expect("task").expect("ran");
    }
    for t in flood {
        t.await.expect("task");
    }
    hub.stop().await;
}

#[tokio::test]
async fn a_trusted_device_is_not_held_back_by_the_lockout_on_its_name_and_a_new_one_is() {
    let _turn = TURN.lock().await;
    // The hub's clock stands still: the lock-outs last as long as the test.
    let clock = ManualClock::new();
    let hub = TestHub::start_clocked(
        tempfile::tempdir().expect("tempdir"),
        Limits::default(),
        clock,
    )
    .await;
    hub.add_user("ann", Role::Technician, "Desk").await;
    let device = tether::secrets::new_token().expect("token");
    let stranger = tether::secrets::new_token().expect("token");
    // A wrong password does not make a device trusted.
    let wrong = login(&hub, "ann", "wrong password!!", Some(&stranger)).await;
    assert_eq!(code(wrong), ErrorCode::InvalidCredentials);
    login(&hub, "ann", PASSWORD, Some(&device))
        .await
        .expect("the first login makes the device trusted");

    // Someone guesses at ann's name until it is locked.
    for _ in 0..5 {
        let _ = login(&hub, "ann", "wrong password!!", None).await;
    }
    let locked = login(&hub, "ann", PASSWORD, None).await;
    assert_eq!(
        code(locked),
        ErrorCode::RateLimited,
        "locked without a device"
    );
    let locked = login(&hub, "ann", PASSWORD, Some(&stranger)).await;
    assert_eq!(
        code(locked),
        ErrorCode::RateLimited,
        "locked from a new device"
    );
    login(&hub, "ann", PASSWORD, Some(&device))
        .await
        .expect("the trusted device is not held back");
    let still = login(&hub, "ann", PASSWORD, None).await;
    assert_eq!(
        code(still),
        ErrorCode::RateLimited,
        "a trusted device's login does not clear the lock others built"
    );

    // A stolen device token buys a few guesses, then is trusted no more.
    for _ in 0..5 {
        let wrong = login(&hub, "ann", "wrong password!!", Some(&device)).await;
        assert_eq!(code(wrong), ErrorCode::InvalidCredentials);
    }
    let untrusted = login(&hub, "ann", PASSWORD, Some(&device)).await;
    assert_eq!(code(untrusted), ErrorCode::RateLimited, "no longer trusted");
    hub.stop().await;
}
