//! A console started while its hub is down keeps the saved login and logs in by itself with
//! the saved token when the hub comes back (the link task's reconnect backoff, not a prompt).

mod common;

use std::sync::Arc;
use std::time::Duration;

use tether::console::net::{self, NetCommand, NetEvent};
use tether::hub::{Hub, HubConfig};
use tether::protocol::Role;
use tokio::sync::oneshot;

/// A hub on `listener` over the data in `dir`; stopped by the returned sender.
fn serve(
    dir: &std::path::Path,
    listener: tokio::net::TcpListener,
) -> (Arc<Hub>, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let hub = Hub::open(HubConfig {
        data_dir: dir.join("hub"),
        ..Default::default()
    })
    .expect("open hub");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let hub = hub.clone();
        async move {
            tether::hub::run(hub, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("hub run");
        }
    });
    (hub, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_started_with_the_hub_down_resumes_its_saved_login_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let url = format!("wss://{addr}");

    // A saved login: a token from a first run of the hub.
    let (hub, stop, task) = serve(dir.path(), listener);
    let fingerprint = hub.fingerprint().to_owned();
    let test_hub_store = hub.store().clone();
    tokio::task::spawn_blocking(move || {
        let password_hash = tether::secrets::hash_password(common::PASSWORD).expect("hash");
        test_hub_store
            .create_user(tether::hub::store::NewUser {
                name: "ann".into(),
                email: "ann@example.com".into(),
                role: Role::Technician,
                team: "Desk".into(),
                password_hash,
            })
            .expect("create user");
    })
    .await
    .expect("join");
    let pin = tether::tls::Pin::Fingerprint(
        tether::tls::parse_fingerprint(&fingerprint).expect("fingerprint"),
    );
    let (client, _events) = tether::client::HubClient::connect(&url, pin)
        .await
        .expect("connect");
    let (token, _, _) = client.login("ann", common::PASSWORD).await.expect("login");
    drop(client);
    drop(hub);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("hub stops")
        .expect("hub task");

    // The console starts: the hub is down.
    let (commands, mut events) = net::spawn();
    commands
        .send(NetCommand::Resume {
            hub: url.clone(),
            fingerprint: fingerprint.clone(),
            token,
        })
        .expect("send");
    let first = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an answer while the hub is down")
        .expect("link task alive");
    assert!(
        matches!(first, NetEvent::Disconnected { .. }),
        "the hub being down is a wait, not a failure: {first:?}"
    );

    // The hub returns on its address: the console is logged in without being asked anything.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind the hub's address again");
    let (_hub, stop, task) = serve(dir.path(), listener);
    let logged_in = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match events.recv().await {
                Some(NetEvent::LoggedIn { user, .. }) => return user,
                Some(NetEvent::Disconnected { .. }) => continue,
                other => panic!("expected a resumed login, got {other:?}"),
            }
        }
    })
    .await
    .expect("resumed within 40 s of the hub's return");
    assert_eq!(logged_in.name, "ann");
    let _ = commands.send(NetCommand::Shutdown);
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}
