//! The audit's iptables-restore reader on arbitrary text, with the look-ups the controls make.

#![no_main]

use baseimg::audit::iptables::parse;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rules) = parse(text, "/etc/iptables/rules.v4") else { return };
    for chains in rules.tables.values() {
        for chain in chains.values() {
            for rule in &chain.rules {
                let _ = rule.option(&["-p", "--protocol"]);
                let _ = rule.option(&["-i", "--in-interface"]);
                let _ = rule.target();
                let _ = rule.modules();
                let _ = rule.ports();
            }
        }
    }
    let _ = rules.chain("filter", "INPUT");
});
