//! What the user types: the device's confirmation code and new passwords.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use base_middleware::confirm::ConfirmationCode;
use base_middleware::messages::Password;
use zeroize::Zeroizing;

/// Shows this side's code and asks the user to type the code the device shows.
/// Returns whether the typed code equals ours.
pub fn confirm_code(code: ConfirmationCode, device_name: &str) -> anyhow::Result<bool> {
    let mut err = std::io::stderr().lock();
    writeln!(err, "Pairing with `{device_name}`. This client's confirmation code: {code}")?;
    writeln!(err, "The device shows its code on its console and in its journal")?;
    writeln!(err, "(`journalctl -u base-middleware`). Continue only if the two codes are equal.")?;
    write!(err, "Type the code shown on the device to confirm (anything else cancels): ")?;
    err.flush()?;
    let line = read_line().context("reading the confirmation code")?;
    Ok(code.matches_input(line.trim()))
}

/// Reads a new password: twice without echo on a terminal, else one line from stdin.
pub fn new_password() -> anyhow::Result<Password> {
    let text = if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("New password: ")?);
        let second = Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
        if *first != *second {
            bail!("the two passwords differ; nothing was changed");
        }
        first.to_string()
    } else {
        let line = Zeroizing::new(read_line().context("reading the password from stdin")?);
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    Password::new(text).map_err(|reason| anyhow::anyhow!("{reason}"))
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line)?;
    if read == 0 {
        bail!("stdin closed before a line was read");
    }
    Ok(line)
}
