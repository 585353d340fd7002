//! An S3-compatible store on loopback for the off-site copies: moto's S3
//! over HTTPS, each request's Signature Version 4 checked by botocore
//! before moto sees it (`py/s3_store.py`, written from AWS's documentation,
//! not from Tallybox's code).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, openssl_certificates, wait_for};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/py/s3_store.py");

/// The store, killed when dropped.
pub struct S3Store {
    pub port: u16,
    /// The CA its certificate chains to (PEM).
    pub ca: PathBuf,
    pub access_key: String,
    pub secret: String,
    pub bucket: String,
    log: PathBuf,
    child: Child,
}

impl S3Store {
    /// Starts a store in `dir` that knows one access key, with `bucket` made.
    pub fn start(dir: &Path, bucket: &str) -> S3Store {
        let (ca, cert, key) = openssl_certificates(dir);
        let (port, log) = (free_port(), dir.join("s3-requests.jsonl"));
        let (access_key, secret) = ("TALLYBOXTESTKEY".to_string(), "s3cr3t/for+the-test".to_string());
        let child = Command::new("python3")
            .arg(SCRIPT)
            .args([
                "serve",
                &port.to_string(),
                &cert,
                &key,
                &ca,
                &access_key,
                &secret,
                bucket,
            ])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("s3-store.err")).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        let store = S3Store {
            port,
            ca: PathBuf::from(ca),
            access_key,
            secret,
            bucket: bucket.to_string(),
            log,
            child,
        };
        let ready = wait_for(Duration::from_secs(30), || {
            std::fs::read_to_string(&store.log)
                .ok()?
                .lines()
                .any(|l| l == "ready")
                .then_some(())
        });
        assert!(
            ready.is_some(),
            "the S3 store did not start (scripts/test installs moto): {}",
            std::fs::read_to_string(dir.join("s3-store.err")).unwrap_or_default()
        );
        store
    }

    /// The requests it took, one JSON object each (method, path, query,
    /// bytes, verdict: `ok` or the refusal), the bucket's making left out.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .skip(1)
            .collect()
    }

    fn client(&self, command: &str, extra: &[&str]) -> String {
        let port = self.port.to_string();
        let ca = self.ca.display().to_string();
        let mut args = vec![command, &port, &ca, &self.access_key, &self.secret, &self.bucket];
        args.extend_from_slice(extra);
        let out = Command::new("python3")
            .arg(SCRIPT)
            .args(&args)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "s3_store.py {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The bucket's object names, read with boto3.
    pub fn names(&self) -> Vec<String> {
        self.client("list", &[]).lines().map(str::to_string).collect()
    }

    /// Uploads `file` as `object` with boto3.
    pub fn put(&self, object: &str, file: &Path) {
        self.client("put", &[object, &file.display().to_string()]);
    }

    /// Downloads `object` into `to` with boto3.
    pub fn get(&self, object: &str, to: &Path) {
        self.client("get", &[object, &to.display().to_string()]);
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
