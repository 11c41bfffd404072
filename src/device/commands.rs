//! Each `baseimg device` subcommand: open the right connection, send one request, print.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use base_middleware::client::store::{ClientStore, PairedDevice};
use base_middleware::keys::StaticKeypair;
use base_middleware::messages::{ClientName, DeviceStatus, Reply, Request, SessionState};

use super::connect::{self, DeviceConnection, Endpoint};
use super::{prompt, ClientsCommand, DeviceCommand, KeysCommand, SshCommand};

/// The client's store and which device the user picked.
pub struct Context {
    store: ClientStore,
    selector: Option<String>,
}

impl Context {
    /// Opens the store in `config_dir` or the user's config folder.
    pub fn new(config_dir: Option<PathBuf>, selector: Option<String>) -> anyhow::Result<Self> {
        let dir = match config_dir {
            Some(dir) => dir,
            None => dirs::config_dir()
                .context("no config folder for this user (set --config-dir)")?
                .join("baseimg/device"),
        };
        Ok(Self { store: ClientStore::open(&dir)?, selector })
    }

    fn identity(&self) -> anyhow::Result<StaticKeypair> {
        self.store.identity()
    }

    fn selected_device(&self) -> anyhow::Result<PairedDevice> {
        let devices = self.store.devices()?;
        let chosen = match &self.selector {
            Some(wanted) => devices.iter().find(|d| d.name == *wanted || d.address == *wanted),
            None if devices.len() == 1 => devices.first(),
            None if devices.is_empty() => bail!("no paired device; run `baseimg device pair ADDR`"),
            None => bail!("several paired devices; pick one with --device (see `devices`)"),
        };
        chosen.cloned().with_context(|| {
            format!("no paired device named `{}`", self.selector.as_deref().unwrap_or(""))
        })
    }

    /// Opens a pinned connection to the selected device and checks it still knows us.
    async fn open_paired(&self) -> anyhow::Result<DeviceConnection> {
        let device = self.selected_device()?;
        let endpoint = Endpoint::parse(&device.address)?;
        let conn = connect::open(&endpoint, &self.identity()?, Some(device.public_key)).await?;
        if conn.hello().session != SessionState::Paired {
            bail!("`{}` no longer knows this client (revoked?); pair again", device.name);
        }
        Ok(conn)
    }

    async fn request(&self, request: Request) -> anyhow::Result<Reply> {
        let mut conn = self.open_paired().await?;
        let reply = conn.request(request).await?;
        conn.close().await;
        match reply {
            Reply::Failed { message } => bail!("the device could not do it: {message}"),
            reply => Ok(reply),
        }
    }
}

/// Runs one subcommand.
pub async fn dispatch(ctx: &Context, command: DeviceCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeviceCommand::Discover { seconds, json } => discover(seconds, json).await,
        DeviceCommand::Pair { addr, name } => pair(ctx, &addr, name).await,
        DeviceCommand::Devices => list_devices(ctx),
        DeviceCommand::Status { json } => status(ctx, json).await,
        DeviceCommand::SetPassword { account } => {
            let password = prompt::new_password()?;
            let account = account.into();
            done(ctx, Request::SetPassword { account, password }, "password set, account unlocked")
                .await
        }
        DeviceCommand::Ssh(command) => ssh(ctx, command).await,
        DeviceCommand::Clients(command) => clients(ctx, command).await,
        DeviceCommand::OpenWindow { seconds } => open_window(ctx, seconds).await,
        DeviceCommand::Reboot => done(ctx, Request::Reboot, "rebooting").await,
    }
}

async fn done(ctx: &Context, request: Request, message: &str) -> anyhow::Result<ExitCode> {
    match ctx.request(request).await? {
        Reply::Done => {
            eprintln!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unexpected reply from the device: {other:?}"),
    }
}

async fn discover(seconds: u64, json: bool) -> anyhow::Result<ExitCode> {
    let wait = Duration::from_secs(seconds);
    let found = tokio::task::spawn_blocking(move || base_middleware::mdns::discover(wait))
        .await
        .context("the discovery task failed")??;
    if json {
        println!("{}", serde_json::to_string_pretty(&found).context("serializing")?);
        return Ok(ExitCode::SUCCESS);
    }
    if found.is_empty() {
        eprintln!("no device answered within {seconds}s");
    }
    for device in found {
        let paired = device.properties.get("paired").map_or("?", String::as_str);
        let addresses: Vec<String> = device.addresses.iter().map(|a| a.to_string()).collect();
        println!(
            "{}\t{}:{}\tpaired={paired}\t{}",
            device.instance,
            device.host,
            device.port,
            addresses.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn pair(ctx: &Context, addr: &str, name: Option<String>) -> anyhow::Result<ExitCode> {
    let endpoint = Endpoint::parse(addr)?;
    let mut conn = connect::open(&endpoint, &ctx.identity()?, None).await?;
    let hello = conn.hello().clone();
    match hello.session {
        SessionState::Paired => eprintln!("`{}` already knows this client", hello.device_name),
        SessionState::NotPaired => bail!(
            "`{}` is not accepting new clients. Open a pairing window first: \
             `baseimg device open-window` from a paired client, or \
             `base-middleware open-window` as root on the device",
            hello.device_name
        ),
        SessionState::ConfirmationRequired => {
            if !prompt::confirm_code(conn.code(), &hello.device_name)? {
                conn.close().await;
                eprintln!("the codes differ or pairing was cancelled; nothing was paired");
                return Ok(ExitCode::from(1));
            }
            let client_id = conn.confirm_pairing(client_name(name)?).await?;
            eprintln!("paired with `{}`; this client's id is {client_id}", hello.device_name);
        }
    }
    let record = PairedDevice {
        name: hello.device_name,
        address: addr.to_string(),
        public_key: conn.device_key(),
        client_id: ctx.identity()?.public().short_id(),
    };
    conn.close().await;
    ctx.store.add_device(record)?;
    Ok(ExitCode::SUCCESS)
}

fn client_name(name: Option<String>) -> anyhow::Result<ClientName> {
    let name = name.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|host| host.trim().to_string())
            .unwrap_or_else(|_| "baseimg".into())
    });
    ClientName::new(&name).map_err(|reason| anyhow::anyhow!("client name `{name}`: {reason}"))
}

fn list_devices(ctx: &Context) -> anyhow::Result<ExitCode> {
    for device in ctx.store.devices()? {
        println!("{}\t{}\t{}", device.name, device.address, device.public_key.short_id());
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(ctx: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let Reply::Status(status) = ctx.request(Request::Status).await? else {
        bail!("unexpected reply to status");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status).context("serializing")?);
    } else {
        print_status(&status);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(status: &DeviceStatus) {
    let locked: Vec<&str> = status.system.locked_accounts.iter().map(|a| a.login()).collect();
    println!("hostname:  {}", status.hostname);
    println!("version:   {}", status.version);
    println!("uptime:    {}s", status.uptime_seconds);
    println!("ssh:       {}", if status.system.ssh_enabled { "enabled" } else { "disabled" });
    println!("locked:    {}", if locked.is_empty() { "none".into() } else { locked.join(", ") });
    for service in &status.system.services {
        println!("service:   {} {}", service.unit, service.state);
    }
}

async fn ssh(ctx: &Context, command: SshCommand) -> anyhow::Result<ExitCode> {
    match command {
        SshCommand::Enable => done(ctx, Request::SetSsh { enabled: true }, "ssh enabled").await,
        SshCommand::Disable => done(ctx, Request::SetSsh { enabled: false }, "ssh disabled").await,
        SshCommand::Keys(KeysCommand::Add { key }) => {
            let key = read_key_argument(&key)?;
            done(ctx, Request::AddSshKey { key }, "key added").await
        }
        SshCommand::Keys(KeysCommand::List) => {
            let Reply::SshKeys { keys } = ctx.request(Request::ListSshKeys).await? else {
                bail!("unexpected reply to the key list");
            };
            for key in keys {
                println!("{}\t{}\t{}", key.fingerprint, key.algorithm, key.comment);
            }
            Ok(ExitCode::SUCCESS)
        }
        SshCommand::Keys(KeysCommand::Remove { fingerprint }) => {
            done(ctx, Request::RemoveSshKey { fingerprint }, "key removed").await
        }
    }
}

/// A key argument is a path to a `.pub` file if such a file exists, else the key itself.
fn read_key_argument(arg: &str) -> anyhow::Result<String> {
    let path = std::path::Path::new(arg);
    if !arg.starts_with("ssh-") && !arg.starts_with("ecdsa-") && path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key file `{}`", path.display()))?;
        return Ok(text.trim().to_string());
    }
    Ok(arg.trim().to_string())
}

async fn clients(ctx: &Context, command: ClientsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientsCommand::List => {
            let Reply::Clients { clients } = ctx.request(Request::ListClients).await? else {
                bail!("unexpected reply to the client list");
            };
            for client in clients {
                let mark = if client.is_caller { "*" } else { " " };
                println!(
                    "{mark} {}\t{}\tpaired at {}",
                    client.id, client.name, client.paired_at_unix
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ClientsCommand::Revoke { id } => {
            done(ctx, Request::RevokeClient { id: id.clone() }, &format!("revoked {id}")).await
        }
    }
}

async fn open_window(ctx: &Context, seconds: u32) -> anyhow::Result<ExitCode> {
    let Reply::WindowOpened { seconds } =
        ctx.request(Request::OpenPairingWindow { seconds }).await?
    else {
        bail!("unexpected reply to open-window");
    };
    eprintln!("pairing window open for {seconds}s: one new client may pair");
    Ok(ExitCode::SUCCESS)
}
