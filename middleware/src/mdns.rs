//! mDNS: the device announces itself; clients discover devices on the local network.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};

/// The DNS-SD service type of a baseimg device.
pub const SERVICE_TYPE: &str = "_baseimg._tcp.local.";

/// What the device announces.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// Instance name, normally the hostname.
    pub instance: String,
    /// The public port (nginx's TLS port), not the daemon's loopback port.
    pub port: u16,
    pub version: String,
    pub paired: bool,
}

impl Announcement {
    /// TXT record entries: protocol and software version, websocket path, paired flag.
    pub fn txt(&self) -> Vec<(&'static str, String)> {
        vec![
            ("proto", crate::messages::PROTOCOL_VERSION.to_string()),
            ("version", self.version.clone()),
            ("path", crate::transport::WS_PATH.to_string()),
            ("paired", if self.paired { "yes" } else { "no" }.to_string()),
        ]
    }

    fn service_info(&self) -> anyhow::Result<ServiceInfo> {
        let host = format!("{}.local.", self.instance);
        let entries = self.txt();
        let txt: Vec<(&str, &str)> = entries.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ServiceInfo::new(SERVICE_TYPE, &self.instance, &host, "", self.port, &txt[..])
            .map(ServiceInfo::enable_addr_auto)
            .context("building the mDNS service record")
    }
}

/// A running announcement.
pub struct Announcer {
    daemon: ServiceDaemon,
    announcement: Announcement,
}

impl Announcer {
    /// Starts announcing.
    pub fn start(announcement: Announcement) -> anyhow::Result<Self> {
        let daemon = ServiceDaemon::new().context("starting the mDNS responder")?;
        daemon.register(announcement.service_info()?).context("registering the mDNS service")?;
        Ok(Self { daemon, announcement })
    }

    /// Re-announces with a new paired flag.
    pub fn set_paired(&mut self, paired: bool) -> anyhow::Result<()> {
        self.announcement.paired = paired;
        let info = self.announcement.service_info()?;
        self.daemon.register(info).context("updating the mDNS service")
    }
}

/// A device found on the network.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Discovered {
    pub instance: String,
    pub host: String,
    pub addresses: Vec<IpAddr>,
    pub port: u16,
    pub properties: BTreeMap<String, String>,
}

/// Browses for devices for `wait` and returns what answered.
pub fn discover(wait: Duration) -> anyhow::Result<Vec<Discovered>> {
    let daemon = ServiceDaemon::new().context("starting the mDNS browser")?;
    let events = daemon.browse(SERVICE_TYPE).context("browsing for devices")?;
    let deadline = Instant::now() + wait;
    let mut found = BTreeMap::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(service)) => {
                let device = discovered(&service);
                found.insert(device.instance.clone(), device);
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    let _ = daemon.shutdown();
    Ok(found.into_values().collect())
}

fn discovered(service: &mdns_sd::ResolvedService) -> Discovered {
    let instance = service.get_fullname().trim_end_matches(SERVICE_TYPE).trim_end_matches('.');
    let mut addresses: Vec<IpAddr> =
        service.get_addresses().iter().map(|a| a.to_ip_addr()).collect();
    addresses.sort();
    let properties = service
        .get_properties()
        .iter()
        .map(|p| (p.key().to_string(), p.val_str().to_string()))
        .collect();
    Discovered {
        instance: instance.to_string(),
        host: service.get_hostname().to_string(),
        addresses,
        port: service.get_port(),
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcement_carries_version_path_and_paired_flag() {
        let announcement = Announcement {
            instance: "base".into(),
            port: 443,
            version: "0.1.0".into(),
            paired: false,
        };
        let txt = announcement.txt();
        assert!(txt.contains(&("paired", "no".to_string())));
        assert!(txt.contains(&("path", "/api/ws".to_string())));
        assert!(txt.contains(&("version", "0.1.0".to_string())));
        assert!(announcement.service_info().is_ok());
    }
}
