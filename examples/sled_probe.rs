//! The storage engine alone, without sms2fa (docs/benchmarks.md, API load and Scale).
//!
//! Memory floor: how much RSS sled 0.34 needs to open a tree of N entries, whatever the
//! values hold. The daemon keeps about five entries per live code (code, expiry index,
//! outbox message, message history, number's send history), so this bounds what any
//! record layout on sled can reach at 10^6 codes.
//!
//!   cargo run --release --example sled_probe -- fill 1000000 40
//!   cargo run --release --example sled_probe -- open 1000000
//!
//! `queue N` is the outbox and expiry-index pattern: keys in time order, each removed
//! again soon (at most 1,000 live), and shows what the process keeps meanwhile.
//! `flush` times `Db::flush` after one write and after 64 (the group commit's unit of
//! durability), and `fdatasync` of a 512-byte append for comparison.
//!
//! The database goes to $TMPDIR/sms2fa-sled-probe (removed by `fill`/`queue`/`flush`).

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
    let usage = "usage: sled_probe fill N VALUE_BYTES | open N | queue N | flush";
    let mode = args.first().expect(usage).as_str();
    let n: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let dir = std::env::temp_dir().join("sms2fa-sled-probe");
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
        "flush" => {
            let _ = std::fs::remove_dir_all(&dir);
            let db = config.open().expect("open");
            let tree = db.open_tree("t").expect("tree");
            for i in 0..n {
                tree.insert(key(i), vec![7u8; 300]).expect("insert");
            }
            db.flush().expect("flush");
            for batch in [1u64, 64] {
                let mut millis = Vec::new();
                for round in 0..300u64 {
                    for j in 0..batch {
                        tree.insert(key((round * batch + j) % n), vec![8u8; 300])
                            .expect("insert");
                    }
                    let started = std::time::Instant::now();
                    db.flush().expect("flush");
                    millis.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                let (p50, p99) = percentiles(&mut millis);
                println!("sled flush after {batch} write(s): p50 {p50:.3} ms, p99 {p99:.3} ms");
            }
            let mut millis = Vec::new();
            let mut file = std::fs::File::create(dir.join("fdatasync-probe")).expect("file");
            for _ in 0..300 {
                std::io::Write::write_all(&mut file, &[9u8; 512]).expect("write");
                let started = std::time::Instant::now();
                file.sync_data().expect("fdatasync");
                millis.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            let (p50, p99) = percentiles(&mut millis);
            println!("fdatasync of a 512-byte append: p50 {p50:.3} ms, p99 {p99:.3} ms");
        }
        _ => panic!("{usage}"),
    }
}

fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}
