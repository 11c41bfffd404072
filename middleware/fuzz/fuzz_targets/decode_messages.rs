//! Feeds arbitrary bytes to every decoder a peer can reach: API requests and replies, the
//! device's hello, helper requests and control requests. None may panic.

#![no_main]

use base_middleware::control::ControlRequest;
use base_middleware::helper::HelperRequest;
use base_middleware::messages::{decode, encode, Hello, Reply, Request};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode::<Request>(data) {
        let again = decode::<Request>(&encode(&request)).expect("re-encoded request decodes");
        assert_eq!(format!("{again:?}"), format!("{request:?}"));
    }
    let _ = decode::<Reply>(data);
    let _ = decode::<Hello>(data);
    let _ = decode::<HelperRequest>(data);
    let _ = decode::<ControlRequest>(data);
});
