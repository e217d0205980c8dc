//! libFuzzer entry for [`secsip::fuzz::websocket`]; the body lives in the library so
//! `cargo test` replays the corpus through the same code.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| secsip::fuzz::websocket(data));
