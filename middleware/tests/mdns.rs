//! mDNS on this machine's interfaces: the announcement is found by the browser.

use std::time::Duration;

use base_middleware::mdns::{discover, Announcement, Announcer};

#[test]
fn announced_device_is_discovered_with_its_paired_flag_and_port() {
    let instance = format!("mdnstest-{}", std::process::id());
    let announcement = Announcement {
        instance: instance.clone(),
        port: 4443,
        version: "9.9.9".into(),
        paired: false,
    };
    let _announcer = Announcer::start(announcement).expect("announcing");
    let found = discover(Duration::from_secs(3)).expect("browsing");
    let device = found.iter().find(|d| d.instance == instance);
    let device = device.unwrap_or_else(|| panic!("{instance} not among {found:?}"));
    assert_eq!(device.port, 4443);
    assert_eq!(device.properties.get("paired").map(String::as_str), Some("no"));
    assert_eq!(device.properties.get("version").map(String::as_str), Some("9.9.9"));
}
