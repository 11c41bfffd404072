//! A paired channel closes on any frame that is tampered, replayed, malformed or unknown.

mod common;

use base_middleware::messages::Request;
use base_middleware::session::Session;
use common::{identity, TestDevice};
use tokio::net::TcpStream;

async fn paired_session() -> (TestDevice, base_middleware::client::Connection<TcpStream>) {
    let mut device = TestDevice::start().await;
    let conn = device.pair(&identity(), "laptop").await;
    (device, conn)
}

/// Sends `frame` raw and returns the reason the device gave for closing.
async fn close_reason_after(session: &mut Session<TcpStream>, frame: Vec<u8>) -> String {
    session.send_raw_frame(frame).await.expect("frame sent");
    let err = session.recv::<serde_json::Value>().await.expect_err("connection closes");
    err.to_string()
}

#[tokio::test]
async fn tampered_frame_closes_the_connection() {
    let (_device, mut conn) = paired_session().await;
    let session = conn.session_mut();
    let mut frame = session.seal_message(&Request::ListClients).expect("sealed");
    frame[3] ^= 0x40;
    let reason = close_reason_after(session, frame).await;
    assert!(reason.contains("failed authentication"), "{reason}");
}

#[tokio::test]
async fn replayed_frame_closes_the_connection() {
    let (_device, mut conn) = paired_session().await;
    let session = conn.session_mut();
    let frame = session.seal_message(&Request::ListClients).expect("sealed");
    session.send_raw_frame(frame.clone()).await.expect("sent");
    session.recv::<serde_json::Value>().await.expect("first copy is answered");
    let reason = close_reason_after(session, frame).await;
    assert!(reason.contains("failed authentication"), "{reason}");
}

#[tokio::test]
async fn malformed_message_closes_the_connection_with_its_reason() {
    let (_device, mut conn) = paired_session().await;
    let session = conn.session_mut();
    let frame = session.seal_bytes(b"{not json").expect("sealed");
    let reason = close_reason_after(session, frame).await;
    assert!(reason.contains("malformed message"), "{reason}");
}

#[tokio::test]
async fn unknown_request_closes_the_connection_with_its_reason() {
    let (_device, mut conn) = paired_session().await;
    let session = conn.session_mut();
    let frame = session.seal_bytes(br#"{"v":1,"body":"format_disk"}"#).expect("sealed");
    let reason = close_reason_after(session, frame).await;
    assert!(reason.contains("unknown variant"), "{reason}");
}

#[tokio::test]
async fn other_protocol_version_closes_the_connection_with_its_reason() {
    let (_device, mut conn) = paired_session().await;
    let session = conn.session_mut();
    let frame = session.seal_bytes(br#"{"v":2,"body":"list_clients"}"#).expect("sealed");
    let reason = close_reason_after(session, frame).await;
    assert!(reason.contains("unsupported protocol version 2"), "{reason}");
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_message_closes_the_connection() {
    let device = TestDevice::start().await;
    let stream = TcpStream::connect(device.addr).await.expect("connects");
    let mut frames = base_middleware::client::websocket(stream, &device.url()).await.expect("ws");
    frames.send(vec![7u8; 10]).await.expect("sent");
    let err = frames.recv().await.expect_err("closed");
    assert!(err.to_string().contains("noise"), "{err}");
}

#[tokio::test]
async fn websocket_on_another_path_is_refused() {
    let device = TestDevice::start().await;
    let stream = TcpStream::connect(device.addr).await.expect("connects");
    let url = format!("ws://{}/other", device.addr);
    let err = base_middleware::client::websocket(stream, &url).await.err().expect("refused");
    assert!(format!("{err:#}").contains("404"), "{err:#}");
}
