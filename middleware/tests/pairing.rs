//! Pairing over real loopback sockets: codes, confirmation, windows, persistence, revocation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base_middleware::control;
use base_middleware::messages::{ClientName, Reply, Request, SessionState};
use base_middleware::state::DeviceState;
use common::{expect_closed, expect_reply, identity, TestDevice};

#[tokio::test]
async fn first_client_pairs_with_identical_codes_and_reconnects_without_pairing_again() {
    let mut device = TestDevice::start().await;
    let me = identity();
    let mut conn = device.pair(&me, "laptop").await;
    let device_key = conn.device_key();
    assert_eq!(device_key, device.device.public_key());
    expect_reply(&mut conn, Request::ListClients).await;
    conn.close().await;

    let persisted = DeviceState::open(&device.state_dir).expect("state reloads");
    assert!(persisted.is_paired(&me.public()), "client key was not persisted");

    let mut again = device.connect(&me, Some(device_key)).await.expect("reconnects");
    assert_eq!(again.hello().session, SessionState::Paired);
    expect_reply(&mut again, Request::ListClients).await;
    assert!(device.prompts.try_recv().is_err(), "reconnecting must not prompt again");
}

#[tokio::test]
async fn restarted_daemon_keeps_its_key_and_its_paired_clients() {
    let mut device = TestDevice::start().await;
    let me = identity();
    let device_key = device.pair(&me, "laptop").await.device_key();
    let dirs = device.stop();

    let restarted = TestDevice::start_with(dirs, Duration::from_secs(5)).await;
    let mut conn = restarted.connect(&me, Some(device_key)).await.expect("pinned key matches");
    assert_eq!(conn.hello().session, SessionState::Paired);
    expect_reply(&mut conn, Request::ListClients).await;
}

#[tokio::test]
async fn client_connecting_with_no_window_open_gets_no_api() {
    let mut device = TestDevice::start().await;
    device.pair(&identity(), "first").await;

    let mut stranger = device.connect(&identity(), None).await.expect("handshake completes");
    assert_eq!(stranger.hello().session, SessionState::NotPaired);
    let err = expect_closed(&mut stranger, Request::ListClients).await;
    assert!(err.contains("not paired and no window is open"), "{err}");
    assert!(device.prompts.try_recv().is_err(), "no code is shown without a window");
}

#[tokio::test]
async fn client_sending_api_request_instead_of_confirming_gets_no_api_and_is_not_paired() {
    let mut device = TestDevice::start().await;
    let me = identity();
    let mut conn = device.connect(&me, None).await.expect("connects");
    assert_eq!(conn.hello().session, SessionState::ConfirmationRequired);
    device.next_prompt().await;
    let err = expect_closed(&mut conn, Request::ListClients).await;
    assert!(err.contains("before confirming pairing"), "{err}");
    assert!(!device.device.is_paired(&me.public()));
}

#[tokio::test]
async fn client_that_never_confirms_is_dropped_after_the_timeout_unpaired() {
    let dirs = Arc::new(tempfile::tempdir().expect("temp dir"));
    let device = TestDevice::start_with(dirs, Duration::from_millis(300)).await;
    let me = identity();
    let mut conn = device.connect(&me, None).await.expect("connects");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let name = ClientName::new("late").expect("valid");
    let err = format!("{:#}", conn.confirm_pairing(name).await.expect_err("too late"));
    assert!(err.contains("did not confirm pairing in time"), "{err}");
    assert!(!device.device.is_paired(&me.public()));
}

#[tokio::test]
async fn window_opened_by_a_paired_client_admits_exactly_one_new_client() {
    let mut device = TestDevice::start().await;
    let mut owner = device.pair(&identity(), "owner").await;
    let reply = expect_reply(&mut owner, Request::OpenPairingWindow { seconds: 60 }).await;
    assert_eq!(reply, Reply::WindowOpened { seconds: 60 });

    device.pair(&identity(), "phone").await;
    let late = device.connect(&identity(), None).await.expect("connects");
    assert_eq!(late.hello().session, SessionState::NotPaired);
}

#[tokio::test]
async fn window_opened_by_the_local_root_command_admits_a_new_client() {
    let mut device = TestDevice::start().await;
    device.pair(&identity(), "owner").await;
    let socket = device.state_dir.with_file_name("control.sock");
    let listener = control::bind(&socket).expect("binds");
    tokio::spawn(control::serve(listener, Arc::clone(&device.device)));

    let path = socket.clone();
    let granted = tokio::task::spawn_blocking(move || control::request_window(&path, 30))
        .await
        .expect("joins")
        .expect("window opened");
    assert_eq!(granted, 30);
    device.pair(&identity(), "phone").await;
}

#[tokio::test]
async fn two_clients_handshaking_at_once_keep_separate_sessions() {
    let mut device = TestDevice::start().await;
    let (alice, bob) = (identity(), identity());
    let (a, b) = tokio::join!(device.connect(&alice, None), device.connect(&bob, None));
    let (mut a, mut b) = (a.expect("alice connects"), b.expect("bob connects"));
    assert_ne!(a.code(), b.code(), "each handshake has its own hash and code");

    let prompts = [device.next_prompt().await, device.next_prompt().await];
    for (conn, key) in [(&a, alice.public()), (&b, bob.public())] {
        let prompt = prompts.iter().find(|p| p.client == key).expect("a prompt per client");
        assert_eq!(prompt.code, conn.code());
    }

    a.confirm_pairing(ClientName::new("alice").expect("valid")).await.expect("alice pairs");
    let err = b.confirm_pairing(ClientName::new("bob").expect("valid")).await.expect_err("closed");
    assert!(format!("{err:#}").contains("window closed"), "{err:#}");
    let Reply::Clients { clients } = expect_reply(&mut a, Request::ListClients).await else {
        panic!("expected the client list");
    };
    assert_eq!(clients.len(), 1);
    assert!(clients[0].is_caller);
}

#[tokio::test]
async fn two_paired_clients_interleaving_requests_each_get_their_own_replies() {
    let mut device = TestDevice::start().await;
    let (alice, bob) = (identity(), identity());
    let mut a = device.pair(&alice, "alice").await;
    expect_reply(&mut a, Request::OpenPairingWindow { seconds: 60 }).await;
    let mut b = device.pair(&bob, "bob").await;
    for _ in 0..5 {
        let (ra, rb) =
            tokio::join!(a.request(Request::ListClients), b.request(Request::ListClients));
        for (reply, name) in [(ra, "alice"), (rb, "bob")] {
            let Ok(Reply::Clients { clients }) = reply else { panic!("expected clients") };
            let caller = clients.iter().find(|c| c.is_caller).expect("caller marked");
            assert_eq!(caller.name, name);
        }
    }
}

#[tokio::test]
async fn revoked_client_is_refused_mid_session_and_on_reconnect() {
    let mut device = TestDevice::start().await;
    let (owner_key, phone_key) = (identity(), identity());
    let mut owner = device.pair(&owner_key, "owner").await;
    expect_reply(&mut owner, Request::OpenPairingWindow { seconds: 60 }).await;
    let mut phone = device.pair(&phone_key, "phone").await;

    let id = phone_key.public().short_id();
    assert_eq!(expect_reply(&mut owner, Request::RevokeClient { id }).await, Reply::Done);
    let err = expect_closed(&mut phone, Request::ListClients).await;
    assert!(err.contains("revoked"), "{err}");
    let again = device.connect(&phone_key, None).await.expect("handshake completes");
    assert_eq!(again.hello().session, SessionState::NotPaired);
}

#[tokio::test]
async fn client_refuses_a_device_whose_key_differs_from_the_paired_one() {
    let mut device = TestDevice::start().await;
    let me = identity();
    device.pair(&me, "laptop").await;
    let impostor_key = identity().public();
    let err = device.connect(&me, Some(impostor_key)).await.err().expect("refused");
    assert!(format!("{err:#}").contains("differs from the paired key"), "{err:#}");
}

#[tokio::test]
async fn root_on_the_device_can_list_and_revoke_a_client_that_paired_first() {
    let mut device = TestDevice::start().await;
    let intruder = identity();
    device.pair(&intruder, "intruder").await;
    let socket = device.state_dir.with_file_name("control.sock");
    let listener = control::bind(&socket).expect("binds");
    tokio::spawn(control::serve(listener, Arc::clone(&device.device)));

    let id = intruder.public().short_id();
    let path = socket.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let listed = control::call(&path, &control::ControlRequest::ListClients);
        let revoked = control::call(&path, &control::ControlRequest::RevokeClient { id });
        (listed, revoked)
    });
    let (listed, revoked) = listed.await.expect("joins");
    let control::ControlReply::Clients { clients } = listed.expect("listed") else {
        panic!("expected the client list");
    };
    assert_eq!(clients[0].name, "intruder");
    assert!(matches!(revoked.expect("revoked"), control::ControlReply::Revoked));
    assert!(!device.device.is_paired(&intruder.public()));
    device.pair(&identity(), "owner").await;
}
