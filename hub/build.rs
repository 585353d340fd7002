//! Compresses the web page's files at build time, with brotli and with gzip;
//! the hub serves the smaller copy a browser accepts at no run-time cost.
//! Each file's ETag is made here too.

use std::io::Write;
use std::path::Path;

const FILES: &[&str] = &[
    "index.html",
    "app.js",
    "i18n.js",
    "style.css",
    "manifest.webmanifest",
    "icon.svg",
    "sw.js",
];

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for name in FILES {
        let src = web.join(name);
        println!("cargo:rerun-if-changed={}", src.display());
        let bytes = std::fs::read(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).expect("gzip in memory");
        let packed = gz.finish().expect("gzip in memory");
        std::fs::write(Path::new(&out).join(format!("{name}.gz")), packed).expect("write to OUT_DIR");
        let mut br = Vec::new();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 11,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut bytes.as_slice(), &mut br, &params).expect("brotli in memory");
        std::fs::write(Path::new(&out).join(format!("{name}.br")), br).expect("write to OUT_DIR");
        // The ETag: a hash of the file as it is in this build.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&bytes, &mut hasher);
        let tag = format!("\"{:016x}\"", std::hash::Hasher::finish(&hasher));
        std::fs::write(Path::new(&out).join(format!("{name}.etag")), tag).expect("write to OUT_DIR");
    }
}
