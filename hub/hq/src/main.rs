//! `tallybox-hq`: head office of a chain of Tallybox shops.
//!
//! Every shop's hub sends its outbox (transactions as they change,
//! settlements, fraud hits, freezes) through the chain's MQTT broker;
//! `tallybox-hq serve` keeps each entry once in PostgreSQL (`ingest.rs`,
//! `db.rs`) and serves head office's page (`web.rs`). Several instances may
//! share one database. `tallybox-hq enrol STORE` makes the one-time code a
//! shop joins with (`tallybox chain join CODE` on its hub).

mod db;
mod ingest;
mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ed25519_dalek::SigningKey;
use sha2::Digest;
use tallybox::chain::wire::{self, EnrolCode};
use tallybox_platform::mqtt::BrokerAddr;

#[derive(Parser)]
#[command(
    name = "tallybox-hq",
    version,
    about = "Head office of a chain of Tallybox shops"
)]
struct Cli {
    /// PostgreSQL, as a connection string (`host=/run/postgresql dbname=tallybox_hq`, or a postgres:// URL).
    #[arg(
        long,
        env = "TALLYBOX_HQ_DB",
        global = true,
        default_value = "host=/run/postgresql dbname=tallybox_hq"
    )]
    db: String,
    /// Head office's signing key (made at first use, mode 0600).
    #[arg(long, global = true, default_value = "/var/lib/tallybox-hq/hq.key")]
    key: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Take every store's outbox from the chain's broker into PostgreSQL, and serve the page.
    Serve {
        /// The chain's MQTT broker (mqtt://USER:PASSWORD@HOST:PORT).
        #[arg(long)]
        broker: BrokerAddr,
        /// This instance's MQTT client id: unique per instance, the same across restarts.
        #[arg(long, default_value = "tallybox-hq")]
        client_id: String,
        /// Database connections taking stores' entries at once (each store's by one).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        workers: u16,
        /// Where the head-office page listens.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
    },
    /// Make the one-time code a shop joins the chain with.
    Enrol {
        /// The store's id (letters, digits, - and _; at most 32).
        store: String,
        /// The store's name on head office's page.
        #[arg(long, default_value = "")]
        name: String,
        /// The chain's broker as the shops reach it.
        #[arg(long)]
        broker: BrokerAddr,
        /// Hours the code stays good.
        #[arg(long, default_value_t = 72)]
        valid_hours: i64,
    },
    /// Offer an update bundle (a hub's or a checkout's, as `tallybox
    /// release sign` makes them) to every shop: head office keeps it and
    /// serves it on its page server at URL/bundles/SHA-256; each hub fetches,
    /// checks and installs it (a checkout's: offers it to its checkouts).
    PublishUpdate {
        bundle: PathBuf,
        /// Head office's page as the shops' hubs reach it (http://host:port).
        #[arg(long)]
        url: String,
        /// The update keys the hubs trust (the bundle is checked against them first).
        #[arg(long, default_value = tallybox::install::UPDATE_KEYS)]
        keys: PathBuf,
        /// The chain's MQTT broker.
        #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
        broker: BrokerAddr,
    },
    /// Publish a document to every store from a TOML file: `fraud_rules`
    /// (a hub's `[fraud]` settings) or `shop_settings` (slip_header,
    /// slip_footer, cashier_sign_on, pairing_required, managers_unfreeze).
    Publish {
        /// What it is: fraud_rules or shop_settings.
        kind: String,
        /// The settings, as TOML.
        file: PathBuf,
        /// The chain's MQTT broker.
        #[arg(long)]
        broker: BrokerAddr,
    },
    /// Refuse a store's messages from now on (a lost or stolen hub); it joins again with a new code.
    Revoke { store: String },
    /// Add or change a login for head office's page; the password is read from standard input.
    Account {
        name: String,
        /// Only these stores (comma-separated); every store when left out.
        #[arg(long, value_delimiter = ',')]
        stores: Option<Vec<String>>,
    },
}

/// Head office's key, made on first use.
fn load_or_create_key(path: &Path) -> anyhow::Result<SigningKey> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        tallybox_platform::fsync::write_synced(path, hex::encode(key.to_bytes()).as_bytes())?;
        tracing::info!(path = %path.display(), "made head office's signing key");
        return Ok(key);
    }
    let text = tallybox::store::read_private(path).map_err(anyhow::Error::msg)?;
    wire::signing_key(&text)
        .ok_or_else(|| anyhow::anyhow!("{} is not a head-office key (64 hex digits)", path.display()))
}

/// A document's body from `file`, checked as a store would take it.
fn read_document(kind: &str, file: &Path) -> anyhow::Result<serde_json::Value> {
    if !wire::DOCUMENT_KINDS.contains(&kind) {
        anyhow::bail!("head office publishes {} only", wire::DOCUMENT_KINDS.join(" or "));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("{}: {}", file.display(), e.message()))?;
    let body = serde_json::to_value(&table)?;
    let object = body.as_object().expect("a table is an object");
    let checked = if kind == wire::FRAUD_RULES {
        tallybox::coordinator::fraud::FraudRules::default()
            .with_chain(&Default::default(), object)
            .map(drop)
    } else {
        let shop: tallybox::shop::Shop = serde_json::from_value(serde_json::json!({"name": "shop"}))?;
        shop.with_chain(&Default::default(), object).map(drop)
    };
    checked.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(body)
}

/// Publishes one retained message with QoS 1 and waits for the broker to take it.
async fn publish_retained(broker: &BrokerAddr, topic: &str, payload: Vec<u8>) -> anyhow::Result<()> {
    let mut options = rumqttc::MqttOptions::new(
        format!("tallybox-hq-publish-{}", std::process::id()),
        broker.host.clone(),
        broker.port,
    );
    options.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = &broker.credentials {
        options.set_credentials(user, password);
    }
    let (client, mut events) = rumqttc::AsyncClient::new(options, 8);
    client
        .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload)
        .await?;
    let taken = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(anyhow::anyhow!("the chain's broker at {broker}: {e}")),
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("the chain's broker at {broker} did not take the document within 10 s"))?;
    let _ = client.disconnect().await;
    taken
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let key = load_or_create_key(&cli.key)?;
    let mut client = db::connect(&cli.db).await?;
    db::migrate(&mut client).await?;
    match cli.command {
        Command::Serve {
            broker,
            client_id,
            workers,
            listen,
        } => {
            let stop = tokio_util::sync::CancellationToken::new();
            let on_signal = stop.clone();
            tokio::spawn(async move {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                on_signal.cancel();
            });
            let page = web::serve(listen, db::connect(&cli.db).await?, stop.clone()).await?;
            println!("head office page on http://{page}");
            let mut dbs = vec![client];
            for _ in 1..workers {
                dbs.push(db::connect(&cli.db).await?);
            }
            ingest::run(dbs, key, broker, &client_id, stop).await
        }
        Command::Enrol {
            store,
            name,
            broker,
            valid_hours,
        } => {
            if !wire::valid_store_id(&store) {
                anyhow::bail!("'{store}' is not a store id: 1 to 32 letters, digits, - or _");
            }
            let secret: [u8; 16] = rand::random();
            db::open_enrolment(&mut client, &store, &name, &secret, valid_hours).await?;
            let code = EnrolCode {
                broker: broker.url(),
                store: store.clone(),
                hq: hex::encode(key.verifying_key().to_bytes()),
                secret: hex::encode(secret),
            };
            println!("{}", code.encode());
            eprintln!("on store {store}'s hub: tallybox chain join <the line above>; good for {valid_hours} hours, once");
            Ok(())
        }
        Command::Publish { kind, file, broker } => {
            let body = read_document(&kind, &file)?;
            let version = db::new_document(&mut client, &kind, &body).await?;
            let (topic, sealed) = ingest::sealed_document(&kind, version, body, &key);
            publish_retained(&broker, &topic, sealed).await?;
            println!("{kind} version {version} published; each store's answer shows on the page (Documents)");
            Ok(())
        }
        Command::PublishUpdate {
            bundle,
            url,
            keys,
            broker,
        } => {
            let keys = tallybox_platform::update::trusted_keys(&keys)?;
            let manifest = tallybox_platform::update::Bundle::open(&bundle, &keys)
                .map_err(|e| anyhow::anyhow!("{}: {e}", bundle.display()))?
                .manifest;
            let kind = match manifest.product.as_str() {
                "hub" => wire::HUB_UPDATE,
                "terminal" => wire::TERMINAL_UPDATE,
                other => anyhow::bail!("{}: a bundle for {other}", bundle.display()),
            };
            let bytes = std::fs::read(&bundle)?;
            let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
            db::keep_bundle(&client, &sha256, &manifest.product, &manifest.version, &bytes).await?;
            let offer = tallybox::chain::bundle::Offer {
                version: manifest.version.clone(),
                size: bytes.len() as u64,
                url: format!("{}/bundles/{sha256}", url.trim_end_matches('/')),
                sha256,
            };
            let body = serde_json::to_value(&offer)?;
            let version = db::new_document(&mut client, kind, &body).await?;
            let (topic, sealed) = ingest::sealed_document(kind, version, body, &key);
            publish_retained(&broker, &topic, sealed).await?;
            println!(
                "{} {} offered to every shop ({kind} version {version}); each store's answer shows on the page",
                manifest.product, manifest.version
            );
            Ok(())
        }
        Command::Revoke { store } => {
            if db::revoke(&client, &store).await? {
                println!("store {store}'s key is revoked: its messages are refused until it joins again with a new code");
                Ok(())
            } else {
                anyhow::bail!("no store {store}")
            }
        }
        Command::Account { name, stores } => {
            let password = std::io::read_to_string(std::io::stdin())?;
            let password = password.trim_end_matches(['\n', '\r']);
            web::set_account(&client, &name, password, stores.as_deref()).await?;
            println!("account {name} can sign in to head office's page");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    tallybox_platform::cli::init_logging("info,rumqttc=warn");
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tallybox-hq: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tallybox-hq: {e:#}");
            ExitCode::FAILURE
        }
    }
}
