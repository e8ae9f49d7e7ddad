//! Length before hashing: an over-long password is refused like a wrong one without reaching
//! argon2id. Alone in its test binary, because it reads the process-wide count of argon2 runs.

mod common;

use common::TestHub;
use tether::client::{ClientError, HubClient};
use tether::protocol::{ProtocolError, Role};
use tether::secrets::work::argon2_runs;

fn hub_error(e: ClientError) -> ProtocolError {
    match e {
        ClientError::Hub(p) => p,
        other => panic!("expected an error from the hub, got {other}"),
    }
}

#[tokio::test]
async fn an_over_long_password_answers_like_a_wrong_one_without_hashing() {
    let hub = TestHub::start().await;
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (client, _) = HubClient::connect(&hub.url, hub.pin())
        .await
        .expect("connect");

    let before = argon2_runs();
    let wrong = hub_error(
        client
            .login("ann", "wrong password!!")
            .await
            .expect_err("wrong"),
    );
    assert_eq!(
        argon2_runs() - before,
        1,
        "a wrong password is checked once"
    );

    for long in [129, 60 * 1024 / 16] {
        let before = argon2_runs();
        let refused = hub_error(
            client
                .login("ann", &"x".repeat(long))
                .await
                .expect_err("too long"),
        );
        assert_eq!(argon2_runs(), before, "{long} characters reached argon2");
        assert_eq!(
            (refused.code, &refused.message),
            (wrong.code, &wrong.message),
            "the same answer as a wrong password"
        );
    }
}
