//! The management API over a paired channel, with the helper acting on a fixture root.

mod common;

use std::fs;

use base_middleware::helper::password::PasswordHash;
use base_middleware::messages::{Account, Password, Reply, Request};
use common::{expect_reply, identity, TestDevice};

const ED25519_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0TN8xJmSVyQoC3eZlsVxQhQCnY6rZtKxm6hp+4jGfK owner@laptop";

#[tokio::test]
async fn password_with_quotes_and_command_substitution_is_stored_verbatim() {
    let mut device = TestDevice::start().await;
    let mut conn = device.pair(&identity(), "laptop").await;
    let secret = r#"it's "$(touch /tmp/pwned)" `id`; echo $HOME"#;
    let password = Password::new(secret.to_string()).expect("valid");
    let request = Request::SetPassword { account: Account::Root, password };
    assert_eq!(expect_reply(&mut conn, request).await, Reply::Done);

    let commands = device.runner.commands();
    let chpasswd = commands.iter().find(|c| c.program.ends_with("chpasswd")).expect("ran");
    let stdin = String::from_utf8(chpasswd.stdin.clone().expect("fed")).expect("utf8");
    let hash = stdin.strip_prefix("root:").and_then(|s| s.strip_suffix('\n')).expect("shape");
    assert!(PasswordHash::parse(hash).expect("sha512-crypt").verify(secret));
    let unlock = commands.iter().find(|c| c.program.ends_with("usermod")).expect("ran");
    assert!(unlock.args.ends_with(&["--unlock".to_string(), "root".to_string()]));
    let all_args = format!("{commands:?}");
    assert!(!all_args.contains("pwned") && !all_args.contains(secret));
}

#[tokio::test]
async fn ssh_keys_of_base_can_be_added_listed_and_removed() {
    let mut device = TestDevice::start().await;
    let mut conn = device.pair(&identity(), "laptop").await;
    let add = || Request::AddSshKey { key: ED25519_KEY.to_string() };
    assert_eq!(expect_reply(&mut conn, add()).await, Reply::Done);
    assert_eq!(expect_reply(&mut conn, add()).await, Reply::Done);

    let Reply::SshKeys { keys } = expect_reply(&mut conn, Request::ListSshKeys).await else {
        panic!("expected keys");
    };
    assert_eq!(keys.len(), 1, "adding the same key twice keeps one line");
    assert_eq!(keys[0].comment, "owner@laptop");
    let file = device.root.join("home/base/.ssh/authorized_keys");
    assert_eq!(fs::read_to_string(&file).expect("written").lines().count(), 1);

    let fingerprint = keys[0].fingerprint.clone();
    let remove = Request::RemoveSshKey { fingerprint };
    assert_eq!(expect_reply(&mut conn, remove.clone()).await, Reply::Done);
    assert!(matches!(conn.request(remove).await, Ok(Reply::Failed { .. })));
    assert_eq!(fs::read_to_string(&file).expect("kept").trim(), "");
}

#[tokio::test]
async fn key_with_forced_command_option_is_refused() {
    let mut device = TestDevice::start().await;
    let mut conn = device.pair(&identity(), "laptop").await;
    let key = format!("command=\"/bin/sh\" {ED25519_KEY}");
    let reply = conn.request(Request::AddSshKey { key }).await.expect("a reply");
    assert!(matches!(reply, Reply::Failed { ref message } if message.contains("OpenSSH")));
}

#[tokio::test]
async fn status_reports_locked_accounts_ssh_state_and_version() {
    let mut device = TestDevice::start().await;
    let mut conn = device.pair(&identity(), "laptop").await;
    let Reply::Status(status) = expect_reply(&mut conn, Request::Status).await else {
        panic!("expected status");
    };
    assert_eq!(status.version, "0.0.test");
    assert!(!status.system.ssh_enabled);
    assert_eq!(status.system.locked_accounts, vec![Account::Base, Account::Root]);
    assert!(status.system.services.iter().any(|s| s.unit == "ssh.service"));
}

#[tokio::test]
async fn ssh_enable_runs_systemctl_with_argv_only() {
    let mut device = TestDevice::start().await;
    let mut conn = device.pair(&identity(), "laptop").await;
    assert_eq!(expect_reply(&mut conn, Request::SetSsh { enabled: true }).await, Reply::Done);
    let commands = device.runner.commands();
    let last = commands.last().expect("ran");
    assert_eq!(last.program, "/usr/bin/systemctl");
    assert_eq!(last.args.last().map(String::as_str), Some("ssh.service"));
    assert!(last.args.iter().any(|a| a == "enable"));
}

#[tokio::test]
async fn reboot_of_an_offline_root_is_refused_with_a_reason() {
    let mut device = TestDevice::start().await;
    let mut conn = device.pair(&identity(), "laptop").await;
    let reply = conn.request(Request::Reboot).await.expect("a reply");
    assert!(matches!(reply, Reply::Failed { ref message } if message.contains("live system")));
}

#[tokio::test]
async fn pairing_window_longer_than_ten_minutes_is_refused() {
    let mut device = TestDevice::start().await;
    let mut conn = device.pair(&identity(), "laptop").await;
    let reply = conn.request(Request::OpenPairingWindow { seconds: 601 }).await.expect("reply");
    assert!(matches!(reply, Reply::Failed { .. }));
}
