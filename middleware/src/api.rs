//! What each API request does on the device, once the caller is paired.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::helper::password::PasswordHash;
use crate::helper::{HelperReply, HelperRequest};
use crate::keys::PublicKey;
use crate::messages::{Account, DeviceStatus, Password, Reply, Request};
use crate::server::Device;
use crate::window::{WindowReason, MAX_WINDOW};

/// Answers one request from the paired client `caller`; failures become `Reply::Failed`.
pub async fn handle(device: &Arc<Device>, caller: PublicKey, request: Request) -> Reply {
    let name = request_name(&request);
    match perform(device, caller, request).await {
        Ok(reply) => reply,
        Err(err) => {
            log::warn!("request {name} from {} failed: {err:#}", caller.short_id());
            Reply::Failed { message: format!("{err:#}") }
        }
    }
}

async fn perform(
    device: &Arc<Device>,
    caller: PublicKey,
    request: Request,
) -> anyhow::Result<Reply> {
    match request {
        Request::ConfirmPairing { .. } => bail!("this client is already paired"),
        Request::Status => status(device).await.map(Reply::Status),
        Request::SetPassword { account, password } => set_password(device, account, password).await,
        Request::SetSsh { enabled } => helper(device, HelperRequest::SetSsh { enabled }).await,
        Request::AddSshKey { key } => helper(device, HelperRequest::AddAuthorizedKey { key }).await,
        Request::ListSshKeys => helper(device, HelperRequest::ListAuthorizedKeys).await,
        Request::RemoveSshKey { fingerprint } => {
            helper(device, HelperRequest::RemoveAuthorizedKey { fingerprint }).await
        }
        Request::OpenPairingWindow { seconds } => open_window(device, seconds),
        Request::ListClients => Ok(Reply::Clients { clients: device.clients(Some(&caller)) }),
        Request::RevokeClient { id } => revoke(device, &id),
        Request::Reboot => helper(device, HelperRequest::Reboot).await,
    }
}

fn request_name(request: &Request) -> &'static str {
    match request {
        Request::ConfirmPairing { .. } => "confirm_pairing",
        Request::Status => "status",
        Request::SetPassword { .. } => "set_password",
        Request::SetSsh { .. } => "set_ssh",
        Request::AddSshKey { .. } => "add_ssh_key",
        Request::ListSshKeys => "list_ssh_keys",
        Request::RemoveSshKey { .. } => "remove_ssh_key",
        Request::OpenPairingWindow { .. } => "open_pairing_window",
        Request::ListClients => "list_clients",
        Request::RevokeClient { .. } => "revoke_client",
        Request::Reboot => "reboot",
    }
}

async fn call_helper(device: &Arc<Device>, request: HelperRequest) -> anyhow::Result<HelperReply> {
    let privileged = device.privileged();
    let name = request.name();
    tokio::task::spawn_blocking(move || privileged.call(&request))
        .await
        .context("the helper task failed")?
        .with_context(|| format!("helper operation {name}"))
}

async fn helper(device: &Arc<Device>, request: HelperRequest) -> anyhow::Result<Reply> {
    match call_helper(device, request).await? {
        HelperReply::Done => Ok(Reply::Done),
        HelperReply::Keys { keys } => Ok(Reply::SshKeys { keys }),
        HelperReply::NotFound => bail!("no such key"),
        HelperReply::Failed { message } => bail!("{message}"),
        HelperReply::Status(_) => bail!("the helper answered with an unexpected reply"),
    }
}

async fn set_password(
    device: &Arc<Device>,
    account: Account,
    password: Password,
) -> anyhow::Result<Reply> {
    let hash = tokio::task::spawn_blocking(move || PasswordHash::from_password(&password))
        .await
        .context("the hashing task failed")??;
    let reply = helper(device, HelperRequest::SetPasswordHash { account, hash }).await?;
    log::info!("password of `{}` set and account unlocked", account.login());
    Ok(reply)
}

async fn status(device: &Arc<Device>) -> anyhow::Result<DeviceStatus> {
    let system = match call_helper(device, HelperRequest::SystemStatus).await? {
        HelperReply::Status(system) => system,
        HelperReply::Failed { message } => bail!("{message}"),
        _ => bail!("the helper answered with an unexpected reply"),
    };
    Ok(DeviceStatus {
        version: device.info().version.clone(),
        hostname: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_default(),
        uptime_seconds: uptime_seconds().unwrap_or(0),
        system,
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|text| text.trim().to_string())
}

fn uptime_seconds() -> Option<u64> {
    let text = read_trimmed("/proc/uptime")?;
    let seconds: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(seconds as u64)
}

fn open_window(device: &Arc<Device>, seconds: u32) -> anyhow::Result<Reply> {
    if seconds == 0 || u64::from(seconds) > MAX_WINDOW.as_secs() {
        bail!("a pairing window lasts 1 to {} seconds", MAX_WINDOW.as_secs());
    }
    let granted =
        device.open_window(Duration::from_secs(seconds.into()), WindowReason::OpenedByClient);
    Ok(Reply::WindowOpened { seconds: granted.as_secs() as u32 })
}

fn revoke(device: &Arc<Device>, id: &str) -> anyhow::Result<Reply> {
    if device.revoke(id)? {
        Ok(Reply::Done)
    } else {
        bail!("no paired client has id `{id}`")
    }
}
