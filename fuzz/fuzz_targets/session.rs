#![no_main]

#[path = "../harness.rs"]
mod harness;
#[path = "../session.rs"]
mod session;

libfuzzer_sys::fuzz_target!(|data: &[u8]| session::run(data));
