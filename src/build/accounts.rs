//! Users and groups of the image: the admin user, service users, and locked passwords.

use anyhow::Context;

/// The administrator account, the only one SSH lets in.
pub const ADMIN_USER: &str = "base";
/// The admin's uid and gid, the first regular ids on Debian.
pub const ADMIN_ID: u32 = 1000;
/// Groups the admin joins (password sudo, journal reading).
pub const ADMIN_GROUPS: &[&str] = &["sudo", "systemd-journal"];
/// A password field no password matches, marked locked (`!`); unlocking it leaves `*`.
pub const LOCKED: &str = "!*";

/// The account databases of a root filesystem, as text lines.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub passwd: Vec<Vec<String>>,
    pub shadow: Vec<Vec<String>>,
    pub group: Vec<Vec<String>>,
    pub gshadow: Vec<Vec<String>>,
}

/// A system user made for one service: its own uid and group, no shell, no password.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceUser {
    pub name: String,
    pub uid: u32,
    pub description: String,
}

fn split(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(':').map(String::from).collect())
        .collect()
}

fn join(rows: &[Vec<String>]) -> String {
    rows.iter().map(|r| r.join(":") + "\n").collect()
}

impl Accounts {
    pub fn parse(passwd: &str, shadow: &str, group: &str, gshadow: &str) -> anyhow::Result<Self> {
        let accounts = Self {
            passwd: split(passwd),
            shadow: split(shadow),
            group: split(group),
            gshadow: split(gshadow),
        };
        for (name, rows, fields) in [
            ("passwd", &accounts.passwd, 7),
            ("shadow", &accounts.shadow, 9),
            ("group", &accounts.group, 4),
            ("gshadow", &accounts.gshadow, 4),
        ] {
            if let Some(bad) = rows.iter().find(|r| r.len() != fields) {
                anyhow::bail!("base /etc/{name} has a malformed line: {}", bad.join(":"));
            }
        }
        Ok(accounts)
    }

    pub fn uid(&self, user: &str) -> Option<u32> {
        self.passwd.iter().find(|r| r[0] == user).and_then(|r| r[2].parse().ok())
    }

    pub fn gid(&self, group: &str) -> Option<u32> {
        self.group.iter().find(|r| r[0] == group).and_then(|r| r[2].parse().ok())
    }

    /// Sets the password field of `user` to the locked marker.
    pub fn lock(&mut self, user: &str) -> anyhow::Result<()> {
        let row = self
            .shadow
            .iter_mut()
            .find(|r| r[0] == user)
            .with_context(|| format!("no shadow entry for `{user}`"))?;
        row[1] = LOCKED.to_string();
        Ok(())
    }

    /// Adds a user with its own group of the same id; `days` is the last-change day.
    pub fn add_user(
        &mut self,
        name: &str,
        id: u32,
        gecos: &str,
        home: &str,
        shell: &str,
        days: u64,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(self.uid(name).is_none(), "user `{name}` already exists in the base");
        anyhow::ensure!(self.gid(name).is_none(), "group `{name}` already exists in the base");
        let id_s = id.to_string();
        self.passwd.push(vec![
            name.into(),
            "x".into(),
            id_s.clone(),
            id_s.clone(),
            gecos.into(),
            home.into(),
            shell.into(),
        ]);
        let aging = if id >= ADMIN_ID { ["0", "99999", "7"] } else { ["", "", ""] };
        self.shadow.push(vec![
            name.into(),
            LOCKED.into(),
            days.to_string(),
            aging[0].into(),
            aging[1].into(),
            aging[2].into(),
            String::new(),
            String::new(),
            String::new(),
        ]);
        self.group.push(vec![name.into(), "x".into(), id_s, String::new()]);
        self.gshadow.push(vec![name.into(), "!".into(), String::new(), String::new()]);
        Ok(())
    }

    /// Adds `user` to the member lists of `group` (in group and gshadow).
    pub fn add_member(&mut self, group: &str, user: &str) -> anyhow::Result<()> {
        for (rows, col) in [(&mut self.group, 3), (&mut self.gshadow, 3)] {
            let row = rows
                .iter_mut()
                .find(|r| r[0] == group)
                .with_context(|| format!("group `{group}` does not exist in the base"))?;
            let mut members: Vec<&str> = row[col].split(',').filter(|m| !m.is_empty()).collect();
            if !members.contains(&user) {
                members.push(user);
            }
            row[col] = members.join(",");
        }
        Ok(())
    }

    /// The lowest free system id (100..=999) for both a user and a group.
    pub fn free_system_id(&self) -> anyhow::Result<u32> {
        (100..1000)
            .find(|id| {
                !self.passwd.iter().any(|r| r[2] == id.to_string())
                    && !self.group.iter().any(|r| r[2] == id.to_string())
            })
            .context("no free system uid between 100 and 999")
    }

    pub fn render(&self) -> [(&'static str, String, u32); 4] {
        [
            ("etc/passwd", join(&self.passwd), 0o644),
            ("etc/group", join(&self.group), 0o644),
            ("etc/shadow", join(&self.shadow), 0o640),
            ("etc/gshadow", join(&self.gshadow), 0o640),
        ]
    }
}

/// Locks `root`, adds the admin and one system user per service, and clamps every "last
/// password change" day to `days` (the build's epoch), so the day of the build does not
/// show; returns the service users.
pub fn apply(
    acc: &mut Accounts,
    services: &[(&str, &str)],
    days: u64,
) -> anyhow::Result<Vec<ServiceUser>> {
    acc.lock("root")?;
    for row in &mut acc.shadow {
        if row[2].parse::<u64>().is_ok_and(|d| d > days) {
            row[2] = days.to_string();
        }
    }
    acc.add_user(ADMIN_USER, ADMIN_ID, "Administrator", "/home/base", "/bin/bash", days)?;
    for group in ADMIN_GROUPS {
        acc.add_member(group, ADMIN_USER)?;
    }
    let mut users = Vec::new();
    for (name, description) in services {
        let uid = acc.free_system_id()?;
        acc.add_user(name, uid, description, "/nonexistent", "/usr/sbin/nologin", days)?;
        users.push(ServiceUser {
            name: name.to_string(),
            uid,
            description: description.to_string(),
        });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Accounts {
        Accounts::parse(
            "root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n",
            "root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n",
            "root:x:0:\nsudo:x:27:\nsystemd-journal:x:101:\n",
            "root:*::\nsudo:*::\nsystemd-journal:!::\n",
        )
        .expect("sample parses")
    }

    #[test]
    fn root_and_admin_are_locked_and_services_get_free_ids() {
        let mut acc = sample();
        let users =
            apply(&mut acc, &[("base-middleware", "baseimg middleware")], 20000).expect("apply");
        let shadow = &acc.render()[2].1;
        assert!(shadow.contains("root:!*:19000:"), "{shadow}");
        assert!(shadow.contains("base:!*:20000:0:99999:7:::"), "{shadow}");
        assert_eq!(users[0].uid, 102);
        assert!(acc.render()[0].1.contains(
            "base-middleware:x:102:102:baseimg middleware:/nonexistent:/usr/sbin/nologin"
        ));
        assert!(acc.render()[1].1.contains("sudo:x:27:base\n"));
    }

    #[test]
    fn password_change_days_after_the_epoch_are_clamped() {
        let mut acc = sample();
        apply(&mut acc, &[], 18000).expect("apply");
        let shadow = &acc.render()[2].1;
        assert!(shadow.contains("root:!*:18000:") && shadow.contains("sshd:*:18000:"), "{shadow}");
    }

    #[test]
    fn malformed_base_lines_are_refused() {
        assert!(Accounts::parse("root:x:0\n", "", "", "").is_err());
    }
}
