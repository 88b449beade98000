//! The memory floor of the storage engine alone (docs/benchmarks.md, Scale): how much
//! RSS sled 0.34 needs to open a tree of N entries, whatever the values hold. The
//! daemon keeps about five entries per live code (code, expiry index, outbox message,
//! message history, number's send history), so this bounds what any record layout on
//! sled can reach at 10^6 codes.
//!
//!   cargo run --release --example sled_rss_floor -- fill 5000000 40
//!   cargo run --release --example sled_rss_floor -- open 5000000
//!
//!   cargo run --release --example sled_rss_floor -- queue 2000000
//!
//! `queue` is the outbox and expiry-index pattern: keys in time order, each removed
//! again soon (at most 1,000 live), and shows what the process keeps meanwhile.
//!
//! The database goes to $TMPDIR/sms2fa-sled-floor (removed by `fill`/`queue` first).

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib / 1024.0
}

/// Keys spread like the daemon's (hashed scopes, random ids), not sequential.
fn key(i: u64) -> [u8; 8] {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: sled_rss_floor fill N VALUE_BYTES | open N | queue N";
    let mode = args.first().expect(usage).as_str();
    let n: u64 = args.get(1).and_then(|v| v.parse().ok()).expect(usage);
    let dir = std::env::temp_dir().join("sms2fa-sled-floor");
    // The daemon's cache setting (src/store/mod.rs).
    let config = sled::Config::new()
        .path(&dir)
        .cache_capacity(32 * 1024 * 1024);
    match mode {
        "fill" => {
            let size: usize = args.get(2).and_then(|v| v.parse().ok()).expect(usage);
            let _ = std::fs::remove_dir_all(&dir);
            let db = config.open().expect("open");
            let tree = db.open_tree("t").expect("tree");
            for i in 0..n {
                tree.insert(key(i), vec![1u8; size]).expect("insert");
            }
            db.flush().expect("flush");
            println!(
                "filled {n} entries of {size} bytes: RSS {:.0} MiB",
                rss_mib()
            );
        }
        "open" => {
            let db = config.open().expect("open");
            let tree = db.open_tree("t").expect("tree");
            println!("opened {} entries: RSS {:.0} MiB", tree.len(), rss_mib());
            let mut found = 0usize;
            for i in 0..2000u64 {
                found += usize::from(tree.get(key(i * 7919 % n)).expect("get").is_some());
            }
            println!(
                "after 2000 random reads ({found} found): RSS {:.0} MiB",
                rss_mib()
            );
        }
        "queue" => {
            let _ = std::fs::remove_dir_all(&dir);
            let db = config.open().expect("open");
            let tree = db.open_tree("t").expect("tree");
            const LIVE: u64 = 1_000;
            for i in 0..n {
                tree.insert(i.to_be_bytes(), vec![1u8; 300])
                    .expect("insert");
                if i >= LIVE {
                    tree.remove((i - LIVE).to_be_bytes()).expect("remove");
                }
                if (i + 1) % (n / 5).max(1) == 0 {
                    db.flush().expect("flush");
                    println!(
                        "{} inserted, {} live: RSS {:.0} MiB, {:.0} MiB on disk",
                        i + 1,
                        tree.len(),
                        rss_mib(),
                        db.size_on_disk().expect("size") as f64 / 1048576.0
                    );
                }
            }
        }
        _ => panic!("{usage}"),
    }
}
