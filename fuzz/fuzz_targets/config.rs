//! The config parser on arbitrary text: an error (with file, line and key) or a config,
//! never a panic. Both requirement modes are exercised.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sms2fa::config::{Config, Requirements};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for needs in [Requirements::Nothing, Requirements::AccountsAndModems] {
        match Config::parse(text, Path::new("fuzz.toml"), needs) {
            Ok(config) => {
                let _ = format!("{config:?}");
            }
            Err(error) => {
                // Every error renders and names the file.
                assert!(error.to_string().contains("fuzz.toml"), "{error}");
            }
        }
    }
});
