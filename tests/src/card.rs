//! An SD card with a volatile write cache, served to qemu as a network block
//! device (the NBD protocol, fixed newstyle handshake, simple replies): the
//! model the power-cut harness pulls the power on.
//!
//! Writes land in the card's cache, 4 KiB blocks at a time. The cache is
//! written back to the card's file in the background (`WRITE_BACK`), and at
//! once on a flush or a write with FUA when the card is [`Cache::Honest`]; a
//! [`Cache::Lying`] card acknowledges flushes and FUA without writing
//! anything (what cheap cards do, and what qemu's `cache=unsafe` does to a
//! guest). A power cut keeps a random half of the blocks the cache still
//! held, in no order, and loses the rest: what reaches the flash of a
//! cache that was not flushed is not ordered.
//!
//! qemu's own `cache=` modes cannot show this on their own: killing qemu
//! leaves what it wrote in the host's page cache, which survives.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

const BLOCK: u64 = 4096;
/// How often the card writes its cache back by itself.
const WRITE_BACK: Duration = Duration::from_millis(1000);

/// Whether a flush reaches the flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    Honest,
    Lying,
}

struct State {
    file: File,
    size: u64,
    cache: Cache,
    dirty: BTreeMap<u64, Vec<u8>>,
    /// Off between a cut and the next [`Card::power_on`]: requests are dropped.
    powered: bool,
    /// Counts power-ons: a connection from before a cut is not answered.
    generation: u64,
    flushes: u64,
    written_back: u64,
}

impl State {
    fn block(&self, index: u64) -> Vec<u8> {
        if let Some(block) = self.dirty.get(&index) {
            return block.clone();
        }
        let mut block = vec![0; BLOCK as usize];
        let _ = self.file.read_at(&mut block, index * BLOCK);
        block
    }

    fn read(&self, offset: u64, length: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(length);
        let mut at = offset;
        while out.len() < length {
            let block = self.block(at / BLOCK);
            let from = (at % BLOCK) as usize;
            let take = (BLOCK as usize - from).min(length - out.len());
            out.extend_from_slice(&block[from..from + take]);
            at += take as u64;
        }
        out
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let index = at / BLOCK;
            let mut block = self.block(index);
            let from = (at % BLOCK) as usize;
            let take = (BLOCK as usize - from).min(rest.len());
            block[from..from + take].copy_from_slice(&rest[..take]);
            self.dirty.insert(index, block);
            rest = &rest[take..];
            at += take as u64;
        }
    }

    fn write_back(&mut self) {
        for (index, block) in std::mem::take(&mut self.dirty) {
            self.file
                .write_all_at(&block, index * BLOCK)
                .expect("write the card's file");
            self.written_back += 1;
        }
    }

    /// What a honest card does on a flush; a lying one only acknowledges it.
    fn flush(&mut self) {
        self.flushes += 1;
        if self.cache == Cache::Honest {
            self.write_back();
        }
    }
}

/// The card, listening for qemu on a loopback port.
pub struct Card {
    state: Arc<Mutex<State>>,
    pub port: u16,
}

/// What one power cut did to the cache.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cut {
    pub kept: usize,
    pub lost: usize,
}

impl Card {
    /// Serves `path` (its length is the card's size).
    pub fn serve(path: &Path, cache: Cache) -> Card {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .expect("the card's file");
        let size = file.metadata().expect("card size").len();
        let state = Arc::new(Mutex::new(State {
            file,
            size,
            cache,
            dirty: BTreeMap::new(),
            powered: true,
            generation: 0,
            flushes: 0,
            written_back: 0,
        }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the card's port");
        let port = listener.local_addr().unwrap().port();
        let accepting = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&accepting);
                let generation = state.lock().unwrap().generation;
                std::thread::spawn(move || {
                    let _ = serve_client(stream, &state, generation);
                });
            }
        });
        let writer = Arc::downgrade(&state);
        std::thread::spawn(move || loop {
            std::thread::sleep(WRITE_BACK);
            let Some(state) = writer.upgrade() else { return };
            let mut s = state.lock().unwrap();
            if s.powered {
                s.write_back();
            }
        });
        Card { state, port }
    }

    /// The drive option for qemu.
    pub fn qemu_drive(&self) -> String {
        format!(
            "driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port={},file.export=card,if=virtio",
            self.port
        )
    }

    /// Cuts the power: a random half of the cached blocks reach the flash,
    /// the rest are lost, and nothing more is taken until [`Card::power_on`].
    pub fn cut(&self) -> Cut {
        let mut rng = rand::thread_rng();
        let mut s = self.state.lock().unwrap();
        s.powered = false;
        let mut cut = Cut::default();
        for (index, block) in std::mem::take(&mut s.dirty) {
            if rng.gen_bool(0.5) {
                s.file
                    .write_all_at(&block, index * BLOCK)
                    .expect("write the card's file");
                cut.kept += 1;
            } else {
                cut.lost += 1;
            }
        }
        cut
    }

    /// Everything the cache holds written, then off: a clean shutdown.
    pub fn power_off_cleanly(&self) {
        let mut s = self.state.lock().unwrap();
        s.write_back();
        s.powered = false;
    }

    pub fn power_on(&self) {
        let mut s = self.state.lock().unwrap();
        s.powered = true;
        s.generation += 1;
    }

    /// Flushes asked for and blocks written back so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.state.lock().unwrap();
        (s.flushes, s.written_back)
    }
}

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY: u32 = 0x6744_6698;
const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = (1 << 31) | 1;
/// HAS_FLAGS, SEND_FLUSH, SEND_FUA.
const TRANSMISSION_FLAGS: u16 = 1 | (1 << 2) | (1 << 3);
const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const FLAG_FUA: u16 = 1;
const EINVAL: u32 = 22;

fn read_exact<const N: usize>(stream: &mut TcpStream) -> std::io::Result<[u8; N]> {
    let mut bytes = [0; N];
    stream.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn option_reply(stream: &mut TcpStream, option: u32, kind: u32, data: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(20 + data.len());
    out.extend_from_slice(&REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    stream.write_all(&out)
}

fn serve_client(mut stream: TcpStream, state: &Mutex<State>, generation: u64) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let size = state.lock().unwrap().size;
    let mut hello = Vec::new();
    hello.extend_from_slice(&NBDMAGIC.to_be_bytes());
    hello.extend_from_slice(&IHAVEOPT.to_be_bytes());
    hello.extend_from_slice(&3u16.to_be_bytes()); // FIXED_NEWSTYLE | NO_ZEROES
    stream.write_all(&hello)?;
    let client_flags = u32::from_be_bytes(read_exact::<4>(&mut stream)?);
    // Options until the client picks the export.
    loop {
        let head = read_exact::<16>(&mut stream)?;
        let magic = u64::from_be_bytes(head[0..8].try_into().unwrap());
        let option = u32::from_be_bytes(head[8..12].try_into().unwrap());
        let length = u32::from_be_bytes(head[12..16].try_into().unwrap()) as usize;
        if magic != IHAVEOPT || length > 4096 {
            return Ok(());
        }
        let mut data = vec![0; length];
        stream.read_exact(&mut data)?;
        match option {
            OPT_EXPORT_NAME => {
                let mut out = size.to_be_bytes().to_vec();
                out.extend_from_slice(&TRANSMISSION_FLAGS.to_be_bytes());
                if client_flags & 2 == 0 {
                    out.extend_from_slice(&[0; 124]);
                }
                stream.write_all(&out)?;
                break;
            }
            OPT_INFO | OPT_GO => {
                let mut info = 0u16.to_be_bytes().to_vec(); // NBD_INFO_EXPORT
                info.extend_from_slice(&size.to_be_bytes());
                info.extend_from_slice(&TRANSMISSION_FLAGS.to_be_bytes());
                option_reply(&mut stream, option, REP_INFO, &info)?;
                option_reply(&mut stream, option, REP_ACK, &[])?;
                if option == OPT_GO {
                    break;
                }
            }
            OPT_ABORT => {
                option_reply(&mut stream, option, REP_ACK, &[])?;
                return Ok(());
            }
            _ => option_reply(&mut stream, option, REP_ERR_UNSUP, &[])?,
        }
    }
    loop {
        let head = read_exact::<28>(&mut stream)?;
        let magic = u32::from_be_bytes(head[0..4].try_into().unwrap());
        let flags = u16::from_be_bytes(head[4..6].try_into().unwrap());
        let kind = u16::from_be_bytes(head[6..8].try_into().unwrap());
        let handle = &head[8..16];
        let offset = u64::from_be_bytes(head[16..24].try_into().unwrap());
        let length = u32::from_be_bytes(head[24..28].try_into().unwrap()) as usize;
        if magic != REQUEST_MAGIC {
            return Ok(());
        }
        let mut data = Vec::new();
        if kind == CMD_WRITE {
            data = vec![0; length];
            stream.read_exact(&mut data)?;
        }
        let mut s = state.lock().unwrap();
        // A machine whose power was cut gets no more answers.
        if !s.powered || s.generation != generation {
            return Ok(());
        }
        let in_range = offset.checked_add(length as u64).is_some_and(|end| end <= s.size);
        let mut reply = SIMPLE_REPLY.to_be_bytes().to_vec();
        let error = if in_range || kind == CMD_FLUSH || kind == CMD_DISC {
            0
        } else {
            EINVAL
        };
        reply.extend_from_slice(&error.to_be_bytes());
        reply.extend_from_slice(handle);
        match kind {
            CMD_READ if error == 0 => reply.extend_from_slice(&s.read(offset, length)),
            CMD_WRITE if error == 0 => {
                s.write(offset, &data);
                if flags & FLAG_FUA != 0 {
                    s.flush();
                }
            }
            CMD_FLUSH => s.flush(),
            CMD_DISC => return Ok(()),
            _ => {}
        }
        drop(s);
        stream.write_all(&reply)?;
    }
}
