//! `baseimg device` end to end against an in-process daemon on a loopback port.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use base_middleware::display::{ChannelDisplay, PairingPrompt};
use base_middleware::helper::ops::SystemOps;
use base_middleware::helper::runner::{CommandOutput, CommandRunner, CommandSpec};
use base_middleware::server::{self, Device, DeviceInfo};
use base_middleware::state::DeviceState;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// A command line and what it got on stdin.
type Ran = (String, Vec<u8>);

/// Records the helper's commands (stdin included) instead of running them.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Ran>>>);

impl CommandRunner for Recorder {
    fn run(&self, spec: &CommandSpec) -> anyhow::Result<CommandOutput> {
        let stdin = spec.stdin.as_ref().map(|s| s.to_vec()).unwrap_or_default();
        self.0.lock().expect("lock").push((spec.to_string(), stdin));
        Ok(CommandOutput { code: Some(0), ..CommandOutput::default() })
    }
}

struct Daemon {
    url: String,
    prompts: UnboundedReceiver<PairingPrompt>,
    recorder: Recorder,
    dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc")).expect("etc");
        fs::create_dir_all(root.join("home/base")).expect("home");
        fs::write(root.join("etc/passwd"), "base:x:1000:1000::/home/base:/bin/sh\n").expect("w");
        fs::write(root.join("etc/shadow"), "base:!:1::::::\nroot:!:1::::::\n").expect("w");
        let state = DeviceState::open(&dir.path().join("state")).expect("state");
        let recorder = Recorder::default();
        let ops = Arc::new(SystemOps::new(&root, Box::new(recorder.clone())));
        let (sender, prompts) = unbounded_channel();
        let info = DeviceInfo { name: "clibase".into(), version: "0.0.cli".into() };
        let device = Device::new(state, info, ops, Arc::new(ChannelDisplay(sender)), secs(10));
        let addr = spawn_server(device);
        Self { url: format!("ws://{addr}/api/ws"), prompts, recorder, dir }
    }

    fn config(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn next_prompt(&mut self) -> PairingPrompt {
        let deadline = Instant::now() + secs(10);
        while Instant::now() < deadline {
            if let Ok(prompt) = self.prompts.try_recv() {
                return prompt;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the device showed no confirmation code");
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn spawn_server(device: Arc<Device>) -> SocketAddr {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let runtime = runtime.expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            sender.send(listener.local_addr().expect("addr")).expect("send");
            server::serve(listener, device).await
        })
    });
    receiver.recv_timeout(secs(10)).expect("server started")
}

fn baseimg(config: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_baseimg"))
        .args(["device", "--config-dir"])
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("baseimg starts")
}

fn finish(mut child: std::process::Child, stdin: &str) -> Output {
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("written");
    child.wait_with_output().expect("baseimg ends")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Pairs through the CLI, typing the code the device showed.
fn pair(daemon: &mut Daemon, config: &Path) -> Output {
    let child = baseimg(config, &["pair", &daemon.url.clone(), "--name", "cli-test"]);
    let code = daemon.next_prompt().code.to_string();
    finish(child, &format!("{code}\n"))
}

#[test]
fn pairing_by_typing_the_device_code_then_status_and_clients_work() {
    let mut daemon = Daemon::start();
    let config = daemon.config("client");
    let out = pair(&mut daemon, &config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("paired with `clibase`"), "{}", text(&out.stderr));

    let out = finish(baseimg(&config, &["status", "--json"]), "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["version"], "0.0.cli");
    assert_eq!(status["locked_accounts"], serde_json::json!(["base", "root"]));

    let out = finish(baseimg(&config, &["clients", "list"]), "");
    assert!(text(&out.stdout).starts_with("* ") && text(&out.stdout).contains("cli-test"));
}

#[test]
fn typing_a_different_code_cancels_and_pairs_nothing() {
    let mut daemon = Daemon::start();
    let config = daemon.config("client");
    let child = baseimg(&config, &["pair", &daemon.url.clone()]);
    let code: u32 = daemon.next_prompt().code.to_string().parse().expect("digits");
    let out = finish(child, &format!("{:06}\n", (code + 1) % 1_000_000));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nothing was paired"));
    let out = finish(baseimg(&config, &["status"]), "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no paired device"), "{}", text(&out.stderr));
}

#[test]
fn second_client_without_a_window_is_told_how_to_open_one() {
    let mut daemon = Daemon::start();
    let first = daemon.config("first");
    assert!(pair(&mut daemon, &first).status.success());
    let out = finish(baseimg(&daemon.config("second"), &["pair", &daemon.url.clone()]), "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("open-window"), "{}", text(&out.stderr));
}

#[test]
fn password_from_stdin_reaches_chpasswd_only_as_a_hash() {
    let mut daemon = Daemon::start();
    let config = daemon.config("client");
    assert!(pair(&mut daemon, &config).status.success());
    let secret = r#"q'"$(reboot)"`id`"#;
    let out =
        finish(baseimg(&config, &["set-password", "--account", "root"]), &format!("{secret}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let commands = daemon.recorder.0.lock().expect("lock").clone();
    let (_, stdin) = commands.iter().find(|(cmd, _)| cmd.contains("chpasswd")).expect("ran");
    let line = text(stdin);
    let hash = line.trim_end().strip_prefix("root:").expect("root line");
    let hash = base_middleware::helper::password::PasswordHash::parse(hash).expect("hash");
    assert!(hash.verify(secret));
    assert!(!format!("{commands:?}").contains("reboot"));
}

/// nginx serving TLS on a loopback port with the image's own `/api/ws` location (rendered from
/// templates/) in front of the daemon; killed on drop.
struct Nginx {
    child: std::process::Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx is needed for this test (ci/install-host-packages.sh installs it)")
}

/// From the nginx.conf that `baseimg render` produces: the `map` the websocket location needs
/// (for the `http` block) and the `location = /api/ws { ... }` block (for the server).
fn rendered_api_location(dir: &Path) -> (String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join("overlay");
    let opts = baseimg::render_cmd::RenderOptions {
        project: root.clone(),
        profile: "qemu-arm64".into(),
        out: out.clone(),
        ssh_keys: vec![],
        base_tree: Some(root.join("tests/fixtures/base-tree")),
        cache_dir: None,
    };
    baseimg::render_cmd::render(&opts).expect("the qemu-arm64 profile renders");
    let conf = fs::read_to_string(out.join("rootfs/etc/nginx/nginx.conf")).expect("nginx.conf");
    let block = |head: &str, indent: &str| {
        let start = conf.find(head).expect("the block is in nginx.conf");
        let close = format!("\n{indent}}}");
        let end = start + conf[start..].find(&close).expect("end of the block") + close.len();
        conf[start..end].to_string()
    };
    let map = block("map $http_upgrade $connection_upgrade {", "    ");
    (map, block("location = /api/ws {", "        "))
}

fn start_nginx(nginx: &Path, dir: &Path, daemon_url: &str) -> Nginx {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .args(["-nodes", "-days", "1", "-subj", "/CN=base.local", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl could not make a certificate");
    let daemon = daemon_url.trim_start_matches("ws://").trim_end_matches("/api/ws");
    let (map, snippet) = rendered_api_location(dir);
    fs::write(dir.join("api-ws.conf"), snippet.replace("127.0.0.1:8845", daemon)).expect("w");
    let port = free_port();
    let d = dir.display();
    let config = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{}}\nhttp {{\n  access_log off;\n  {map}\n  client_body_temp_path {d}/tmp;\n\
         proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n\
         scgi_temp_path {d}/tmp;\n  server {{\n    listen 127.0.0.1:{port} ssl;\n\
         ssl_certificate {cert};\n    ssl_certificate_key {key};\n    include {d}/api-ws.conf;\n\
         location / {{ return 404; }}\n  }}\n}}\n",
        cert = cert.display(),
        key = key.display()
    );
    fs::write(dir.join("nginx.conf"), config).expect("config");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    wait_for_port(port);
    Nginx { child, port }
}

fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

#[test]
fn pairing_and_client_list_work_through_nginx_tls_with_the_image_location() {
    let nginx = nginx_binary();
    let mut daemon = Daemon::start();
    let nginx_dir = daemon.config("nginx");
    fs::create_dir_all(nginx_dir.join("tmp")).expect("nginx dir");
    let proxy = start_nginx(&nginx, &nginx_dir, &daemon.url.clone());
    let config = daemon.config("client");
    let addr = format!("127.0.0.1:{}", proxy.port);

    let child = baseimg(&config, &["pair", &addr, "--name", "via-nginx"]);
    let code = daemon.next_prompt().code.to_string();
    let out = finish(child, &format!("{code}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = finish(baseimg(&config, &["clients", "list"]), "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("via-nginx"));
}
