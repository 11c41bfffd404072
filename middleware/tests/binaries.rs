//! The shipped binaries: the helper over stdin/stdout, the daemon's start-up refusals.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

fn helper(root: &std::path::Path, input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_base-middleware-helper"))
        .arg("--root")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("helper starts");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("written");
    child.wait_with_output().expect("helper ends")
}

#[test]
fn helper_binary_adds_and_lists_keys_on_a_fixture_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    common::fixture_root(dir.path());
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0TN8xJmSVyQoC3eZlsVxQhQCnY6rZtKxm6hp+4jGfK me";
    let add = format!(r#"{{"v":1,"body":{{"add_authorized_key":{{"key":"{key}"}}}}}}"#);
    let out = helper(dir.path(), &format!("{add}\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"v":1,"body":"done"}"#);

    let out = helper(dir.path(), "{\"v\":1,\"body\":\"list_authorized_keys\"}\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SHA256:") && text.contains("\"comment\":\"me\""), "{text}");
    let file = dir.path().join("home/base/.ssh/authorized_keys");
    let mode = std::fs::metadata(file).expect("written").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn helper_binary_refuses_an_operation_outside_its_fixed_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    common::fixture_root(dir.path());
    let out = helper(dir.path(), "{\"v\":1,\"body\":{\"run\":{\"cmd\":\"id\"}}}\n");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing the request"));
}

#[test]
fn daemon_refuses_to_listen_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_base-middleware"))
        .args(["serve", "--no-mdns", "--listen", "0.0.0.0:8845", "--state-dir"])
        .arg(dir.path().join("state"))
        .output()
        .expect("daemon runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback only"));
}

#[test]
fn daemon_refuses_to_start_on_world_readable_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    base_middleware::state::DeviceState::open(&state).expect("initialised");
    let key = state.join(base_middleware::state::KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_base-middleware"))
        .args(["serve", "--no-mdns", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .output()
        .expect("daemon runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mode 0644") && stderr.contains("refusing"), "{stderr}");
}
