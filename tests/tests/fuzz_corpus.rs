//! Every input the fuzzers kept (`tests/fuzz/corpus/TARGET`) and every crash
//! they found (`tests/fuzz/artifacts/TARGET`), through the same checks the
//! fuzz targets make (`tests/fuzz/bodies`): what was once found stays fixed,
//! on every run of the tests. `scripts/fuzz` looks for new inputs.

use std::path::Path;

#[path = "../fuzz/bodies/bundle.rs"]
mod bundle;
#[path = "../fuzz/bodies/config.rs"]
mod config;
#[path = "../fuzz/bodies/iso8583.rs"]
mod iso8583;
#[path = "../fuzz/bodies/pin_translate.rs"]
mod pin_translate;
#[path = "../fuzz/bodies/printer_status.rs"]
mod printer_status;
#[path = "../fuzz/bodies/protocol_json.rs"]
mod protocol_json;
#[path = "../fuzz/bodies/query.rs"]
mod query;
#[path = "../fuzz/bodies/sealed.rs"]
mod sealed;
#[path = "../fuzz/bodies/swipe.rs"]
mod swipe;
#[path = "../fuzz/bodies/tlv.rs"]
mod tlv;
#[path = "../fuzz/bodies/track2.rs"]
mod track2;

/// A target's check of one input: it panics on what it finds.
type Check = fn(&[u8]);

/// Each target's name and its check.
const TARGETS: &[(&str, Check)] = &[
    ("bundle", bundle::run),
    ("config", config::run),
    ("iso8583", iso8583::run),
    ("pin_translate", pin_translate::run),
    ("printer_status", printer_status::run),
    ("protocol_json", protocol_json::run),
    ("query", query::run),
    ("sealed", sealed::run),
    ("swipe", swipe::run),
    ("tlv", tlv::run),
    ("track2", track2::run),
];

/// The files in `dir`, none when it is missing.
fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_kept_fuzz_input_passes_its_targets_checks() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let on_disk: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for target in &on_disk {
        assert!(
            TARGETS.iter().any(|(name, _)| name == target),
            "fuzz target {target} is not replayed here: add it to TARGETS"
        );
    }
    for (name, run) in TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(name));
        assert!(!corpus.is_empty(), "{name} has no corpus");
        for file in corpus.iter().chain(&inputs(&fuzz.join("artifacts").join(name))) {
            let data = std::fs::read(file).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                panic!("{name} fails on {}", file.display());
            }
        }
    }
}
