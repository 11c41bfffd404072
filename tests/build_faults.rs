//! Real tier: `baseimg build` under faults. Needs root, the host tools of
//! ci/install-host-packages.sh and a cached base for the profile (ci/test.sh runs these after
//! its main build, so the base is warm). `BASEIMG_FAULT_PROFILE` picks the profile
//! (default `rockpro64`).
//!
//! - Killed (SIGKILL, the whole process group) as each step starts, and at several moments
//!   of publishing: the output folder holds the previous complete set or none, never a set
//!   whose `SHA256SUMS` does not check; the next run removes the dead run's temporary files.
//! - A cached base whose tarball has one flipped byte (in a copy of the cache entry) is
//!   refused by hash, and nothing is published.
//! - An output folder on a full file system gives a clear error and no partial files.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SUMS: &str = "SHA256SUMS";

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn profile() -> String {
    std::env::var("BASEIMG_FAULT_PROFILE").unwrap_or_else(|_| "rockpro64".into())
}

/// Two keys, so that consecutive builds make different outputs and a mixed set cannot pass
/// `sha256sum -c` by accident.
fn key(run: usize) -> PathBuf {
    let keys = ["tests/fixtures/keys/id_ed25519.pub", "tests/keys/good/plain-ed25519.pub"];
    project().join(keys[run % 2])
}

fn build_command(out: &Path, run: usize) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baseimg"));
    cmd.current_dir(project())
        .args(["build", "--profile", &profile(), "--out"])
        .arg(out)
        .arg("--ssh-key")
        .arg(key(run));
    cmd
}

/// What a finished or killed run printed on stderr.
struct Run {
    steps: Vec<String>,
    stderr: String,
    success: bool,
    pid: u32,
}

/// Runs a build; when `kill_at` is `Some((step, delay))`, kills its process group `delay`
/// after the line announcing `step`.
fn run_build(out: &Path, run: usize, kill_at: Option<(&str, Duration)>) -> Run {
    let mut child = build_command(out, run)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("baseimg starts");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (sender, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let (mut steps, mut text) = (Vec::new(), String::new());
    for line in lines.iter() {
        text.push_str(&line);
        text.push('\n');
        let Some(step) = line.strip_prefix("==> ") else { continue };
        steps.push(step.to_string());
        if let Some((target, delay)) = kill_at {
            if step == target {
                std::thread::sleep(delay);
                let status = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status()
                    .expect("kill runs");
                assert!(status.success(), "could not kill build {pid}");
                break;
            }
        }
    }
    let status = child.wait().expect("wait");
    let _ = reader.join();
    text.extend(lines.try_iter().map(|l| l + "\n"));
    Run { steps, stderr: text, success: status.success(), pid }
}

/// The published set: `None` without `SHA256SUMS`; else its text, after checking it.
fn published(out: &Path) -> Option<String> {
    let sums = std::fs::read_to_string(out.join(SUMS)).ok()?;
    let check = Command::new("sha256sum")
        .args(["-c", "--quiet", SUMS])
        .current_dir(out)
        .output()
        .expect("sha256sum runs");
    assert!(
        check.status.success(),
        "a partial set with {SUMS} in {}:\n{}{}",
        out.display(),
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let listed: BTreeSet<&str> = sums.lines().filter_map(|l| l.split("  ").nth(1)).collect();
    let name = profile();
    let files = [
        format!("{name}.img"),
        format!("{name}.rootfs.tar"),
        "manifest.json".to_string(),
        format!("{name}.img.zst"),
        format!("{name}.img.bmap"),
        format!("{name}.spdx.json"),
    ];
    let expected: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    assert_eq!(listed, expected, "{SUMS} lists another set");
    Some(sums)
}

fn temp_entries(out: &Path) -> BTreeSet<String> {
    std::fs::read_dir(out)
        .expect("out dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[test]
#[ignore = "real tier: needs root, the host tools and a cached base"]
fn killed_build_leaves_the_previous_set_or_none() {
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch");
    let out = scratch.path().join("out");

    let first = run_build(&out, 0, None);
    assert!(first.success, "the first build failed:\n{}", first.stderr);
    let steps = first.steps.clone();
    assert!(steps.len() >= 8, "too few steps seen: {steps:?}");
    assert_eq!(steps.last().map(String::as_str), Some("publish_outputs"));
    let mut previous = Some(published(&out).expect("the first build published a set"));

    let mut kills: Vec<(String, Duration)> =
        steps.iter().map(|s| (s.clone(), Duration::ZERO)).collect();
    for millis in [300, 1000, 2000, 3500, 5000] {
        kills.push(("publish_outputs".into(), Duration::from_millis(millis)));
    }
    let mut killed_pid: Option<u32> = None;
    for (run, (step, delay)) in kills.iter().enumerate() {
        let result = run_build(&out, run + 1, Some((step, *delay)));
        let label = format!("killed at {step} + {}ms", delay.as_millis());
        let now = published(&out);
        if step == "publish_outputs" {
            // Old set, no set, or the new complete set: `published` checked whichever is there.
            let what = match &now {
                None => "no set",
                Some(sums) if Some(sums) == previous.as_ref() => "the previous set, intact",
                Some(_) => "the new complete set",
            };
            eprintln!("{label}: {what}");
        } else {
            assert_eq!(now, previous, "{label}: the previous set changed");
            eprintln!("{label}: the previous set is intact");
        }
        if result.success {
            eprintln!("{label}: the build had already finished");
        }
        // This run, once past load_profile, removed the temporary files of the one before.
        let temps = temp_entries(&out);
        if step != "load_profile" {
            if let Some(old) = killed_pid {
                let stale = format!(".build.tmp-{old}");
                assert!(!temps.contains(&stale), "{label}: {stale} was not cleaned: {temps:?}");
            }
        }
        let mut allowed = BTreeSet::from([format!(".build.tmp-{}", result.pid)]);
        if step == "load_profile" {
            allowed.extend(killed_pid.map(|old| format!(".build.tmp-{old}")));
        }
        assert!(temps.is_subset(&allowed), "{label}: unexpected temporary files {temps:?}");
        killed_pid = Some(result.pid);
        previous = now;
    }

    let last = run_build(&out, 0, None);
    assert!(last.success, "the build after the kills failed:\n{}", last.stderr);
    assert!(published(&out).is_some(), "the last build published no set");
    assert_eq!(temp_entries(&out), BTreeSet::new(), "temporary files are left");
}

/// Copies the cache entry of the profile's base (a real copy: the shared cache is never
/// touched) and flips one byte inside a file's data in its `base.tar`.
fn damaged_cache_copy(cache: &Path) -> PathBuf {
    let root = project();
    let loaded = baseimg::profile::load(&baseimg::profile::resolve(&root, &profile()))
        .expect("profile loads");
    let board = baseimg::board::load(&root, loaded.profile.image.board.as_str()).expect("board");
    let key = baseimg::build::base::key_for(&root, &loaded.profile, &board.board).expect("key");
    let shared = baseimg::build::default_cache_dir().join("base").join(&key);
    assert!(shared.join("meta.json").is_file(), "no cached base at {}", shared.display());
    let entry = cache.join("base").join(&key);
    std::fs::create_dir_all(cache.join("base")).expect("cache copy folder");
    let status = Command::new("cp")
        .args(["-a", "--reflink=never"])
        .arg(&shared)
        .arg(&entry)
        .status()
        .expect("cp runs");
    assert!(status.success(), "copying the cache entry failed");

    let tarball = entry.join("base.tar");
    let file = std::fs::File::open(&tarball).expect("base.tar");
    let mut archive = tar::Archive::new(file);
    let offset = archive
        .entries()
        .expect("entries")
        .flatten()
        .find(|e| e.header().entry_type().is_file() && e.size() > 65536)
        .map(|e| e.raw_file_position() + 4096)
        .expect("a file of the base with data to damage");
    let mut bytes = std::fs::OpenOptions::new().read(true).write(true).open(&tarball).expect("rw");
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut byte = [0u8];
    bytes.seek(SeekFrom::Start(offset)).expect("seek");
    bytes.read_exact(&mut byte).expect("read");
    bytes.seek(SeekFrom::Start(offset)).expect("seek");
    bytes.write_all(&[byte[0] ^ 0x01]).expect("flip");
    entry
}

#[test]
#[ignore = "real tier: needs root, the host tools, a cached base and 1.6 GB of scratch space"]
fn damaged_cached_base_is_refused_by_hash() {
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch");
    let cache = scratch.path().join("cache");
    damaged_cache_copy(&cache);
    let out = scratch.path().join("out");
    let output = build_command(&out, 0)
        .arg("--cache-dir")
        .arg(&cache)
        .env("BASEIMG_CACHE_DIR", &cache)
        .output()
        .expect("baseimg runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a damaged base was used:\n{stderr}");
    assert!(stderr.contains("is damaged (sha256"), "unclear message:\n{stderr}");
    assert!(stderr.contains("--rebuild-base"), "no remedy named:\n{stderr}");
    assert!(!out.join(SUMS).exists(), "outputs were published from a damaged base");
    assert_eq!(temp_entries(&out), BTreeSet::new(), "temporary files are left");
    eprintln!("{}", stderr.lines().last().unwrap_or(""));
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
#[ignore = "real tier: needs root (mounts a tmpfs), the host tools and a cached base"]
fn full_disk_gives_a_clear_error_and_removes_partial_files() {
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch");
    let out = scratch.path().join("small");
    std::fs::create_dir_all(&out).expect("mount point");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=300m", "tmpfs"])
        .arg(&out)
        .status()
        .expect("mount runs");
    assert!(status.success(), "mounting a tmpfs failed");
    let mounted = Tmpfs(out.clone());
    let output = build_command(&out, 0).output().expect("baseimg runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the build passed on a 300 MiB disk:\n{stderr}");
    assert!(stderr.contains("no space left on the disk"), "unclear message:\n{stderr}");
    let left: Vec<_> = std::fs::read_dir(&out).expect("list").flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "partial files are left: {left:?}");
    eprintln!("{}", stderr.lines().filter(|l| l.contains("error")).collect::<Vec<_>>().join("\n"));
    drop(mounted);
}
