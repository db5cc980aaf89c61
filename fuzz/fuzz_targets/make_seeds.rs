//! Not a fuzzer: writes the seed corpora of `tessera_fuzz::seeds` into
//! `$TESSERA_FUZZ_SEEDS` (default `seeds`) once, whatever the input. A fuzz
//! binary so that it reuses the instrumented build:
//! `cargo fuzz run make_seeds -- -runs=1` (what `scripts/fuzz.sh --seeds` does).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Once;

static WRITE: Once = Once::new();

fuzz_target!(|_data: &[u8]| {
    WRITE.call_once(|| {
        let dir = std::env::var_os("TESSERA_FUZZ_SEEDS").map_or_else(|| "seeds".into(), std::path::PathBuf::from);
        tessera_fuzz::seeds::write_all(dir);
    });
});
