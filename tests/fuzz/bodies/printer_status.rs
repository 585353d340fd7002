//! The four status bytes an ESC/POS printer answers (a noisy serial line).

use tallybox_terminal::devices::printer::status::PrinterStatus;

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    for chunk in data.chunks_exact(4) {
        let bytes = [chunk[0], chunk[1], chunk[2], chunk[3]];
        if let Some(status) = PrinterStatus::from_bytes(bytes) {
            // What the printer model answers for this state means the same
            // problem (the bytes themselves differ: a stopped printer is
            // always "offline" too).
            let again = PrinterStatus::from_bytes(status.to_bytes()).expect("the model's answer decodes");
            assert_eq!(again.problem(), status.problem(), "{status:?}");
        }
    }
}
