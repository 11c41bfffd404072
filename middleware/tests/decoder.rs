//! The decoders survive mutated input on the stable toolchain (the libFuzzer target in
//! `fuzz/` goes much further): no panic, and every accepted request re-encodes to itself.

use base_middleware::control::ControlRequest;
use base_middleware::helper::HelperRequest;
use base_middleware::messages::{decode, encode, Hello, Reply, Request};

const SEEDS: &[&str] = &[
    r#"{"v":1,"body":"status"}"#,
    r#"{"v":1,"body":{"set_password":{"account":"base","password":"x$(y)"}}}"#,
    r#"{"v":1,"body":{"confirm_pairing":{"client_name":"laptop"}}}"#,
    r#"{"v":1,"body":{"set_password_hash":{"account":"root","hash":"$6$a$b"}}}"#,
    r#"{"v":1,"body":{"device_name":"b","version":"1","session":"paired"}}"#,
];

/// xorshift64: deterministic, so a failure names its iteration.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn mutate(seed: &[u8], rng: &mut u64) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=(next(rng) % 4) {
        let at = (next(rng) as usize) % bytes.len().max(1);
        match next(rng) % 4 {
            0 if !bytes.is_empty() => bytes[at] = next(rng) as u8,
            1 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            2 => bytes.insert(at.min(bytes.len()), b"{}[]\":,\\0123456789e-"[at % 20]),
            _ => bytes.truncate(at),
        }
    }
    bytes
}

#[test]
fn mutated_messages_never_panic_and_accepted_requests_round_trip() {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for iteration in 0..50_000 {
        let seed = SEEDS[iteration % SEEDS.len()].as_bytes();
        let input = mutate(seed, &mut rng);
        if let Ok(request) = decode::<Request>(&input) {
            let again = decode::<Request>(&encode(&request)).expect("re-encoded decodes");
            assert_eq!(format!("{again:?}"), format!("{request:?}"), "iteration {iteration}");
        }
        let _ = decode::<Reply>(&input);
        let _ = decode::<Hello>(&input);
        let _ = decode::<HelperRequest>(&input);
        let _ = decode::<ControlRequest>(&input);
    }
}
