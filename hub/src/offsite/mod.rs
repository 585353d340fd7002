//! A copy of the backups off the premises, for a shop with internet: after
//! each automatic backup the hub uploads a proven copy of its database to a
//! bucket of any store that speaks the S3 API (Amazon S3, MinIO, and the S3
//! modes of other clouds), under `FOLDER/STORE_ID/auto-TIME.db`, and keeps
//! the newest [`backups::KEEP`] there. A fire or a theft that takes the hub
//! and its USB stick leaves that copy.
//!
//! Like every copy that leaves the hub, it holds no key (see
//! [`crate::store::backups`]). Requests are signed with AWS Signature
//! Version 4 (the payload's SHA-256 included, so the store refuses a body
//! that changed on the way) and go over HTTPS, checked against the CA
//! bundle the hub trusts. What happened last is kept in [`STATUS_FILE`] for
//! the troubleshooting page; a failed copy is tried again after
//! [`RETRY_AFTER`].

pub mod setup;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{Empty, StreamBody};
use hyper::body::Frame;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;

use crate::acquirer::iso8583::tls::TlsClient;
use crate::config::OffsiteConfig;
use crate::store::{backups, Store};

/// What happened last, in the data directory.
pub const STATUS_FILE: &str = "offsite-copy.json";
/// How long after a failed copy the next is tried.
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(600);
/// How long one request may take (a backup of a large store on a slow line
/// takes minutes).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1800);
/// A copy larger than this goes up in parts of this size (S3 takes one PUT
/// of at most 5 GiB, parts of 5 MiB to 5 GiB, and 10 000 parts: 640 GiB).
/// A part that fails costs its own bytes again, not the whole copy's.
pub const PART_BYTES: u64 = 64 << 20;

/// The last copy, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copied {
    /// When (UTC, RFC 3339).
    pub at: String,
    /// The object written (`FOLDER/STORE_ID/auto-TIME.db`) and its bytes.
    pub object: Option<String>,
    pub bytes: Option<u64>,
    pub error: Option<String>,
}

/// The last copy's record in `data_dir`, if one was ever tried.
pub fn last(data_dir: &Path) -> Option<Copied> {
    let bytes = std::fs::read(data_dir.join(STATUS_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether a copy is due: a backup newer than the last copy, or a failed
/// copy more than `retry_after` ago.
pub fn due(data_dir: &Path, retry_after: std::time::Duration) -> bool {
    let Some((newest, _)) = backups::automatic(&data_dir.join("backups"))
        .ok()
        .and_then(|found| found.into_iter().next())
    else {
        return false;
    };
    let Some(last) = last(data_dir) else {
        return true;
    };
    let at = chrono::DateTime::parse_from_rfc3339(&last.at)
        .ok()
        .map(std::time::SystemTime::from);
    if last.error.is_some() {
        return at.is_none_or(|at| at.elapsed().is_ok_and(|e| e >= retry_after));
    }
    let taken = std::fs::metadata(newest).and_then(|m| m.modified()).ok();
    match (taken, at) {
        (Some(taken), Some(at)) => taken > at,
        _ => true,
    }
}

/// Why a bucket's check did not pass.
#[derive(Debug)]
pub enum Unchecked {
    /// The store answered, and refused: its words.
    Refused(String),
    /// The store could not be reached: why.
    Unreachable(String),
}

/// A bucket, reached with the owner's access key.
pub struct Bucket {
    host: String,
    port: u16,
    /// `/BUCKET`
    bucket: String,
    /// `FOLDER/STORE_ID/` (or `STORE_ID/`): where this hub's copies go.
    folder: String,
    region: String,
    access_key_id: String,
    secret: zeroize::Zeroizing<String>,
    tls: TlsClient,
    /// [`PART_BYTES`], unless set otherwise.
    part_bytes: u64,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Bucket({}:{}{}/{})",
            self.host, self.port, self.bucket, self.folder
        )
    }
}

impl Bucket {
    /// The bucket `config` names, for the copies of `store_id`.
    pub fn new(config: &OffsiteConfig, store_id: &str) -> Result<Bucket, String> {
        let at = crate::payments::https::Endpoint::parse(&config.url)?;
        let mut parts = at.path.trim_matches('/').splitn(2, '/');
        let bucket = parts.next().unwrap_or_default();
        if bucket.is_empty() {
            return Err(format!("{}: no bucket in the path", config.url));
        }
        let folder = match parts.next().map(|f| f.trim_matches('/')) {
            Some(f) if !f.is_empty() => format!("{f}/{store_id}/"),
            _ => format!("{store_id}/"),
        };
        if config.access_key_id.trim().is_empty() {
            return Err("access_key_id is empty".into());
        }
        let secret = crate::store::read_private(&config.secret_key)?;
        let secret = zeroize::Zeroizing::new(secret.trim().to_string());
        if secret.is_empty() {
            return Err(format!("{} is empty", config.secret_key.display()));
        }
        Ok(Bucket {
            tls: TlsClient::new(&config.ca, None, &at.host)?,
            host: at.host,
            port: at.port,
            bucket: format!("/{bucket}"),
            folder,
            region: config.region.clone(),
            access_key_id: config.access_key_id.trim().to_string(),
            secret,
            part_bytes: PART_BYTES,
        })
    }

    /// The same bucket, copies over `bytes` going up in parts of `bytes`
    /// (at least S3's 5 MiB).
    pub fn in_parts_of(self, bytes: u64) -> Bucket {
        Bucket {
            part_bytes: bytes.max(5 << 20),
            ..self
        }
    }

    fn host_header(&self) -> String {
        match self.port {
            443 => self.host.clone(),
            port => format!("{}:{port}", self.host),
        }
    }

    /// Signs a request: its headers, the `Authorization` one included.
    fn headers(&self, method: &str, path: &str, query: &str, payload_sha256: &str) -> Vec<(String, String)> {
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = vec![
            ("host".to_string(), self.host_header()),
            ("x-amz-content-sha256".to_string(), payload_sha256.to_string()),
            ("x-amz-date".to_string(), now.clone()),
        ];
        let authorization = sign(
            &Signing {
                method,
                path,
                query,
                headers: &headers,
                payload_sha256,
                amz_date: &now,
                region: &self.region,
            },
            &self.access_key_id,
            &self.secret,
        );
        headers.push(("authorization".to_string(), authorization));
        headers
    }

    /// A signed request with `body` of `length` bytes.
    fn request<B>(
        &self,
        method: &str,
        path: &str,
        query: &str,
        payload_sha256: &str,
        body: B,
        length: u64,
    ) -> Result<hyper::Request<B>, String> {
        let target = match query {
            "" => path.to_string(),
            q => format!("{path}?{q}"),
        };
        let mut request = hyper::Request::builder().method(method).uri(target);
        for (name, value) in self.headers(method, path, query, payload_sha256) {
            request = request.header(name, value);
        }
        request
            .header(hyper::header::CONTENT_LENGTH, length)
            .body(body)
            .map_err(|e| e.to_string())
    }

    /// Sends one request with `body` of `length` bytes; the status and the
    /// answer's text.
    async fn send<B>(
        &self,
        method: &str,
        path: &str,
        query: &str,
        payload_sha256: &str,
        body: B,
        length: u64,
    ) -> Result<(u16, String), String>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request = self.request(method, path, query, payload_sha256, body, length)?;
        let sent = crate::payments::https::send(&self.tls, &self.host, self.port, request);
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, sent)
            .await
            .unwrap_or_else(|_| Err(format!("{} did not answer within {REQUEST_TIMEOUT:?}", self.host)))?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Uploads `file` as `name` in this hub's folder: in one request, or in
    /// parts when it is larger than a part.
    pub async fn put(&self, name: &str, file: &Path) -> Result<(), String> {
        let length = std::fs::metadata(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            .len();
        let path = self.object_path(name);
        if length > self.part_bytes {
            return self.put_in_parts(&path, file, length).await;
        }
        let (answer, _) = self.put_range(&path, "", file, 0, length).await?;
        match answer {
            (200, _) => Ok(()),
            (status, text) => Err(refusal(status, &text)),
        }
    }

    /// Sends `length` bytes of `file` from `offset` as the body of a PUT to
    /// `path?query`, streamed (never held in memory): the answer, and its
    /// ETag.
    async fn put_range(
        &self,
        path: &str,
        query: &str,
        file: &Path,
        offset: u64,
        length: u64,
    ) -> Result<((u16, String), Option<String>), String> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let unreadable = |e: std::io::Error| format!("cannot read {}: {e}", file.display());
        let sha256 = {
            let file = file.to_path_buf();
            tokio::task::spawn_blocking(move || range_sha256(&file, offset, length))
                .await
                .map_err(|e| e.to_string())?
                .map_err(unreadable)?
        };
        let mut opened = tokio::fs::File::open(file).await.map_err(unreadable)?;
        opened
            .seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(unreadable)?;
        let body = StreamBody::new(
            tokio_util::io::ReaderStream::new(opened.take(length)).map(|chunk| chunk.map(Frame::data)),
        );
        let request = self.request("PUT", path, query, &sha256, body, length)?;
        let sent = async {
            let mut answer = crate::payments::https::open(&self.tls, &self.host, self.port, request).await?;
            let etag = answer
                .headers
                .get(hyper::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = answer.read_all().await?;
            Ok(((answer.status, String::from_utf8_lossy(&text).into_owned()), etag))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, sent)
            .await
            .unwrap_or_else(|_| Err(format!("{} did not answer within {REQUEST_TIMEOUT:?}", self.host)))
    }

    /// S3's multipart upload: started, each part sent, then completed; an
    /// upload that fails is aborted, so the store keeps no parts of it.
    async fn put_in_parts(&self, path: &str, file: &Path, length: u64) -> Result<(), String> {
        let (status, text) = self
            .send("POST", path, "uploads=", EMPTY_SHA256, Empty::<Bytes>::new(), 0)
            .await?;
        let upload = match elements(&text, "UploadId").next() {
            Some(id) if status == 200 => id.to_string(),
            _ => return Err(refusal(status, &text)),
        };
        let id = uri_encode(&upload, true);
        let sent = async {
            let mut completion = String::from("<CompleteMultipartUpload>");
            for (number, offset) in (1u64..).zip((0..length).step_by(self.part_bytes as usize)) {
                let query = format!("partNumber={number}&uploadId={id}");
                let size = self.part_bytes.min(length - offset);
                match self.put_range(path, &query, file, offset, size).await? {
                    ((200, _), Some(etag)) => completion.push_str(&format!(
                        "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
                    )),
                    ((200, _), None) => return Err(format!("the store gave part {number} no ETag")),
                    ((status, text), _) => return Err(refusal(status, &text)),
                }
            }
            completion.push_str("</CompleteMultipartUpload>");
            let sha256 = hex(&Sha256::digest(completion.as_bytes()));
            let length = completion.len() as u64;
            let body = http_body_util::Full::new(Bytes::from(completion));
            let query = format!("uploadId={id}");
            match self.send("POST", path, &query, &sha256, body, length).await? {
                // S3 may answer 200 and then an error, once it has joined the parts.
                (200, text) if !text.contains("<Error>") => Ok(()),
                (status, text) => Err(refusal(status, &text)),
            }
        };
        let done = sent.await;
        if done.is_err() {
            let query = format!("uploadId={id}");
            if let Err(e) = self
                .send("DELETE", path, &query, EMPTY_SHA256, Empty::<Bytes>::new(), 0)
                .await
            {
                tracing::warn!(error = %e, "a failed off-site upload's parts were not removed");
            }
        }
        done
    }

    /// The names in this hub's folder (at most the first thousand).
    pub async fn names(&self) -> Result<Vec<String>, String> {
        let query = format!("list-type=2&prefix={}", uri_encode(&self.folder, true));
        let (status, text) = self
            .send(
                "GET",
                &self.bucket,
                &query,
                EMPTY_SHA256,
                Empty::<Bytes>::new(),
                0,
            )
            .await?;
        if status != 200 {
            return Err(refusal(status, &text));
        }
        Ok(elements(&text, "Key")
            .filter_map(|key| key.strip_prefix(&self.folder).map(str::to_string))
            .filter(|name| !name.contains('/'))
            .collect())
    }

    /// Whether the store takes the access key for this bucket: a listing
    /// of this hub's folder must be answered.
    pub async fn check(&self) -> Result<(), Unchecked> {
        let query = format!("list-type=2&max-keys=1&prefix={}", uri_encode(&self.folder, true));
        match self
            .send(
                "GET",
                &self.bucket,
                &query,
                EMPTY_SHA256,
                Empty::<Bytes>::new(),
                0,
            )
            .await
        {
            Ok((200, _)) => Ok(()),
            Ok((status, text)) => Err(Unchecked::Refused(refusal(status, &text))),
            Err(why) => Err(Unchecked::Unreachable(why)),
        }
    }

    /// Deletes `name` from this hub's folder.
    pub async fn delete(&self, name: &str) -> Result<(), String> {
        let path = self.object_path(name);
        match self
            .send("DELETE", &path, "", EMPTY_SHA256, Empty::<Bytes>::new(), 0)
            .await?
        {
            (200 | 204, _) => Ok(()),
            (status, text) => Err(refusal(status, &text)),
        }
    }

    /// Downloads `name` from this hub's folder into `to` (written whole and
    /// synced, or not at all); its size.
    pub async fn get(&self, name: &str, to: &Path) -> Result<u64, String> {
        use tokio::io::AsyncWriteExt;
        let path = self.object_path(name);
        let request = self.request("GET", &path, "", EMPTY_SHA256, Empty::<Bytes>::new(), 0)?;
        let partial = to.with_extension("partial");
        let download = async {
            let mut answer = crate::payments::https::open(&self.tls, &self.host, self.port, request).await?;
            if answer.status != 200 {
                let text = answer.read_all().await.unwrap_or_default();
                return Err(refusal(answer.status, &String::from_utf8_lossy(&text)));
            }
            let written = |e: std::io::Error| format!("cannot write {}: {e}", partial.display());
            let mut file = tokio::fs::File::create(&partial).await.map_err(written)?;
            let mut bytes = 0u64;
            while let Some(piece) = answer.next().await? {
                file.write_all(&piece).await.map_err(written)?;
                bytes += piece.len() as u64;
            }
            file.sync_all().await.map_err(written)?;
            Ok(bytes)
        };
        let got = tokio::time::timeout(REQUEST_TIMEOUT, download)
            .await
            .unwrap_or_else(|_| Err(format!("{} did not answer within {REQUEST_TIMEOUT:?}", self.host)));
        match got {
            Ok(bytes) => {
                std::fs::rename(&partial, to).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
                Ok(bytes)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    /// This hub's copies in the bucket, newest first.
    pub async fn copies(&self) -> Result<Vec<String>, String> {
        let mut names: Vec<String> = self
            .names()
            .await?
            .into_iter()
            .filter(|n| n.starts_with("auto-") && n.ends_with(".db"))
            .collect();
        names.sort_unstable_by(|a, b| b.cmp(a));
        Ok(names)
    }

    fn object_path(&self, name: &str) -> String {
        format!(
            "{}/{}",
            self.bucket,
            uri_encode(&format!("{}{name}", self.folder), false)
        )
    }

    /// `BUCKET/FOLDER/STORE_ID/name`, as the owner finds it.
    pub fn object(&self, name: &str) -> String {
        format!("{}/{}{name}", &self.bucket[1..], self.folder)
    }
}

/// Takes a proven copy of the newest state (no key in it), uploads it and
/// deletes the oldest copies past [`backups::KEEP`]; what happened is kept
/// in [`STATUS_FILE`]. The object's name, or why there is none.
pub async fn copy(data_dir: &Path, bucket: &Bucket) -> Result<String, String> {
    let result = upload(data_dir, bucket).await;
    let record = Copied {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        object: result.as_ref().ok().map(|(name, _)| bucket.object(name)),
        bytes: result.as_ref().ok().map(|(_, bytes)| *bytes),
        error: result.as_ref().err().cloned(),
    };
    let json = serde_json::to_vec(&record).unwrap_or_default();
    tallybox_platform::fsync::write_synced(&data_dir.join(STATUS_FILE), &json)
        .map_err(|e| format!("cannot write {}: {e}", STATUS_FILE))?;
    result.map(|(name, _)| bucket.object(&name))
}

async fn upload(data_dir: &Path, bucket: &Bucket) -> Result<(String, u64), String> {
    let dir = data_dir.to_path_buf();
    let (name, copy) = tokio::task::spawn_blocking(move || proven_copy(&dir))
        .await
        .map_err(|e| e.to_string())??;
    let put = bucket.put(&name, &copy).await;
    let bytes = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&copy);
    put?;
    // The oldest go; a copy that cannot be deleted now goes next time.
    for old in bucket.copies().await?.iter().skip(backups::KEEP) {
        if let Err(e) = bucket.delete(old).await {
            tracing::warn!(object = %bucket.object(old), error = %e, "an old off-site copy was not deleted");
        }
    }
    Ok((name, bytes))
}

/// What a copy brought from the bucket is called in `backups/`, before its name.
pub const FETCHED: &str = "offsite-";

/// Brings the copy `name` (`latest`: the newest) from the bucket into
/// `data_dir`'s `backups/` as `offsite-NAME`, where a restore takes it: the
/// object's name in the bucket, the file and its size.
pub async fn fetch(data_dir: &Path, bucket: &Bucket, name: &str) -> Result<(String, PathBuf, u64), String> {
    let name = match name {
        "latest" => bucket
            .copies()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| format!("no copies in {}", bucket.object("")))?,
        name => name.to_string(),
    };
    if name.contains('/') || !name.ends_with(".db") {
        return Err(format!("{name} is not the name of a copy (auto-….db)"));
    }
    let dir = data_dir.join("backups");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    let to = dir.join(format!("{FETCHED}{name}"));
    let bytes = bucket.get(&name, &to).await?;
    Ok((bucket.object(&name), to, bytes))
}

/// A proven copy of the database in `backups/`, named as the newest
/// automatic backup is (or for now when there is none), without keys.
fn proven_copy(data_dir: &Path) -> Result<(String, PathBuf), String> {
    let name = backups::automatic(&data_dir.join("backups"))
        .ok()
        .and_then(|found| found.into_iter().next())
        .and_then(|(path, _)| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| {
            format!(
                "auto-{}.db",
                tallybox_platform::clock::now().format("%Y%m%d-%H%M%S")
            )
        });
    let path = data_dir
        .join("backups")
        .join(format!("{}offsite-{name}", backups::PARTIAL));
    let _ = std::fs::remove_file(&path);
    let store = Store::open(data_dir).map_err(|e| e.to_string())?;
    store.backup_to(&path).map_err(|e| e.to_string())?;
    if let Err(why) = backups::prove(&path) {
        let _ = std::fs::remove_file(&path);
        return Err(format!("the copy failed its check ({why}); nothing was sent"));
    }
    Ok((name, path))
}

/// The SHA-256 of `length` bytes of `path` from `offset`.
fn range_sha256(path: &Path, offset: u64, length: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let (mut hash, mut buf) = (Sha256::new(), vec![0u8; 1 << 16]);
    let mut range = file.take(length);
    loop {
        let n = range.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex(&hash.finalize()))
}

/// The SHA-256 of nothing: the payload hash of a request without a body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What the store said when it refused: its error code and message.
fn refusal(status: u16, text: &str) -> String {
    let code = elements(text, "Code").next().unwrap_or_default();
    let message = elements(text, "Message").next().unwrap_or_default();
    match (code, message) {
        ("", "") => format!("the store answered {status}"),
        (code, message) => format!("the store answered {status} {code}: {message}"),
    }
}

/// The texts of each `<name>…</name>` in an XML answer, in order.
fn elements<'a>(xml: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut rest = xml;
    std::iter::from_fn(move || {
        let (_, after) = rest.split_once(open.as_str())?;
        let (text, tail) = after.split_once(close.as_str())?;
        rest = tail;
        Some(text)
    })
}

/// One request to sign.
pub struct Signing<'a> {
    pub method: &'a str,
    /// The path as sent (each segment already URI-encoded).
    pub path: &'a str,
    /// The query as sent, its keys in order, values URI-encoded.
    pub query: &'a str,
    /// The headers to sign, lower-case names.
    pub headers: &'a [(String, String)],
    pub payload_sha256: &'a str,
    /// `YYYYMMDDTHHMMSSZ`
    pub amz_date: &'a str,
    pub region: &'a str,
}

/// The `Authorization` header of AWS Signature Version 4 for S3.
pub fn sign(request: &Signing<'_>, access_key_id: &str, secret: &str) -> String {
    let mut headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.trim()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed_headers = headers.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method, request.path, request.query, request.payload_sha256
    );
    let date = &request.amz_date[..8];
    let scope = format!("{date}/{}/s3/aws4_request", request.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        request.amz_date,
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [date, request.region, "s3", "aws4_request"]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
            hmac(&key, part.as_bytes())
        });
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    format!("AWS4-HMAC-SHA256 Credential={access_key_id}/{scope},SignedHeaders={signed_headers},Signature={signature}")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// URI-encodes as Signature Version 4 asks: every byte but `A-Z a-z 0-9 - . _ ~`
/// as `%XY`; `/` too when `slash`.
pub fn uri_encode(text: &str, slash: bool) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b'/' if !slash => "/".to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's documentation of Signature Version 4 for S3
    /// ("GET Object", the example credentials).
    #[test]
    fn the_signature_of_awss_documented_example() {
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        let authorization = sign(
            &Signing {
                method: "GET",
                path: "/test.txt",
                query: "",
                headers: &headers,
                payload_sha256: EMPTY_SHA256,
                amz_date: "20130524T000000Z",
                region: "us-east-1",
            },
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn names_are_encoded_as_the_signature_wants_and_refusals_say_the_stores_words() {
        assert_eq!(uri_encode("shop 1/auto-x.db", false), "shop%201/auto-x.db");
        assert_eq!(uri_encode("shop/", true), "shop%2F");
        let xml = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>\
                   <Message>The request signature we calculated does not match</Message></Error>";
        assert_eq!(
            refusal(403, xml),
            "the store answered 403 SignatureDoesNotMatch: The request signature we calculated does not match"
        );
        assert_eq!(refusal(502, "bad gateway"), "the store answered 502");
        let listed = "<ListBucketResult><Contents><Key>a/shop/auto-1.db</Key></Contents>\
                      <Contents><Key>a/shop/auto-2.db</Key></Contents></ListBucketResult>";
        assert_eq!(
            elements(listed, "Key").collect::<Vec<_>>(),
            ["a/shop/auto-1.db", "a/shop/auto-2.db"]
        );
    }
}
