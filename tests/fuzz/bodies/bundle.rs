//! An uploaded update bundle: whatever the bytes, either the install is
//! refused and leaves nothing in the install root, or the bytes were a bundle
//! signed with the trusted key (the seed is one) and exactly its version is
//! switched on.

use tallybox_platform::update::{install, InstallOptions};

/// The public half of `tests/keys/update-test.key`.
const TEST_PUB: &str = include_str!("../../keys/update-test.pub");

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("in.update");
    std::fs::write(&bundle, data).unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(keys.join("test.pub"), TEST_PUB).unwrap();
    let keys = tallybox_platform::update::trusted_keys(&keys).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut before = |_: &tallybox_platform::update::Manifest| Ok(());
    let result = install(
        &bundle,
        &keys,
        &root,
        InstallOptions {
            product: "hub",
            allow_downgrade: false,
            before: &mut before,
        },
    );
    match result {
        Ok(installed) => {
            let current = std::fs::read_link(root.join("current")).unwrap();
            assert_eq!(current, std::path::Path::new("versions").join(&installed.version));
            assert!(root.join(&current).is_dir());
        }
        Err(_) => {
            let left: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
            assert!(left.is_empty(), "a refused bundle left {left:?}");
        }
    }
}
