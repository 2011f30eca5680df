//! Trace backend speed: guest instructions per second on the two
//! workloads, for both ABIs, beside the same C source compiled natively for
//! the host (the limit any interpreter is measured against).
//!
//!   cargo bench -p provernode-backend-trace --bench interpreter
//!
//! Criterion reports `thrpt` in guest instructions (elements) per second.
//! The native limit is printed after it; it needs a host C compiler (`cc`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use criterion::{criterion_group, Criterion, Throughput};
use provernode_backend_trace::TraceBackend;
use provernode_core::{Abi, Backend, Limits};

struct Workload {
    guest: &'static str,
    label: &'static str,
    input: Vec<u8>,
}

fn workloads() -> Vec<Workload> {
    let mut chain = vec![0u8; 32];
    chain.extend_from_slice(&1000u32.to_le_bytes());
    vec![
        Workload {
            guest: "fibonacci",
            label: "n=1000000",
            input: 1_000_000u32.to_le_bytes().to_vec(),
        },
        Workload {
            guest: "sha256-chain",
            label: "rounds=1000",
            input: chain,
        },
    ]
}

fn cycles(w: &Workload, abi: Abi) -> u64 {
    let program = provernode_guests::find(w.guest).map(|g| g.program(abi));
    let program = program.unwrap_or_else(|| panic!("no guest {}", w.guest));
    match TraceBackend::new().execute(&program, &w.input, &Limits::default()) {
        Ok(e) => e.cycles,
        Err(e) => panic!("{} on {abi}: {e}", w.guest),
    }
}

fn trace(c: &mut Criterion) {
    let backend = TraceBackend::new();
    for w in workloads() {
        let mut group = c.benchmark_group(format!("trace/{}/{}", w.guest, w.label));
        group.sample_size(10);
        for abi in Abi::ALL {
            let Some(program) = provernode_guests::find(w.guest).map(|g| g.program(abi)) else {
                panic!("no guest {}", w.guest)
            };
            group.throughput(Throughput::Elements(cycles(&w, abi)));
            group.bench_function(abi.name(), |b| {
                b.iter(|| backend.execute(&program, &w.input, &Limits::default()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, trace);

/// Builds the native harness for one guest; `None` (with the reason printed)
/// when no host compiler is installed.
fn build_native(guest: &str, out_dir: &Path) -> Option<PathBuf> {
    let guests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../provernode-guests/guests");
    let exe = out_dir.join(format!("native-{guest}"));
    let object = out_dir.join(format!("{guest}.o"));
    let cc = |args: &[&std::ffi::OsStr]| {
        Command::new("cc")
            .current_dir(&guests)
            .args(["-O2", "-std=c11", "-Iinclude"])
            .args(args)
            .status()
    };
    let status = cc(&[
        "-Dmain=guest_main".as_ref(),
        "-c".as_ref(),
        format!("programs/{guest}.c").as_ref(),
        "-o".as_ref(),
        object.as_os_str(),
    ])
    .and_then(|s| {
        if !s.success() {
            return Ok(s);
        }
        cc(&[
            "native/harness.c".as_ref(),
            "runtime/sha256.c".as_ref(),
            object.as_os_str(),
            "-o".as_ref(),
            exe.as_os_str(),
        ])
    });
    match status {
        Ok(s) if s.success() => Some(exe),
        Ok(s) => {
            println!("native limit not measured: cc failed ({s}) building {guest}");
            None
        }
        Err(e) => {
            println!("native limit not measured: cannot run cc ({e}); install a host C compiler (apt-get install gcc)");
            None
        }
    }
}

fn native_limit() {
    let out_dir = std::env::temp_dir().join(format!("provernode-native-{}", std::process::id()));
    if std::fs::create_dir_all(&out_dir).is_err() {
        println!("native limit not measured: cannot create {}", out_dir.display());
        return;
    }
    println!("\nNative x86-64 build of the same C source (the limit):");
    println!(
        "{:<28} {:>14} {:>16} {:>16} {:>16}",
        "workload", "native/run", "trace risc0/run", "trace sp1/run", "native Minstr/s*"
    );
    let backend = TraceBackend::new();
    for w in workloads() {
        let Some(exe) = build_native(w.guest, &out_dir) else {
            continue;
        };
        let hex_input: String = w.input.iter().map(|b| format!("{b:02x}")).collect();
        let run = |iterations: u32| -> Option<(f64, String)> {
            let out = Command::new(&exe)
                .arg(&hex_input)
                .arg(iterations.to_string())
                .output()
                .ok()?;
            let text = String::from_utf8(out.stdout).ok()?;
            let mut parts = text.split_whitespace();
            Some((parts.next()?.parse().ok()?, parts.next().unwrap_or("").to_owned()))
        };
        // Size the run to about half a second.
        let Some((probe_ns, _)) = run(3) else {
            println!("native limit not measured: {} did not run", exe.display());
            continue;
        };
        let iterations = ((5e8 / probe_ns.max(1.0)) as u32).clamp(3, 1_000_000);
        let Some((native_ns, native_out)) = run(iterations) else {
            continue;
        };
        let mut per_abi = Vec::new();
        for abi in Abi::ALL {
            let Some(program) = provernode_guests::find(w.guest).map(|g| g.program(abi)) else {
                continue;
            };
            let t = Instant::now();
            let exec = backend.execute(&program, &w.input, &Limits::default());
            let elapsed = t.elapsed().as_secs_f64() * 1e9;
            if let Ok(exec) = exec {
                let same = hex::encode(&exec.public_output) == native_out;
                if !same {
                    println!(
                        "warning: native output differs from trace {abi} output for {}",
                        w.guest
                    );
                }
                per_abi.push((elapsed, exec.cycles));
            }
        }
        let risc0_cycles = per_abi.first().map(|p| p.1).unwrap_or(0);
        println!(
            "{:<28} {:>11.3} ms {:>13.3} ms {:>13.3} ms {:>16.0}",
            format!("{} {}", w.guest, w.label),
            native_ns / 1e6,
            per_abi.first().map(|p| p.0 / 1e6).unwrap_or(f64::NAN),
            per_abi.get(1).map(|p| p.0 / 1e6).unwrap_or(f64::NAN),
            risc0_cycles as f64 / native_ns * 1e3,
        );
    }
    println!("* the RV32IM instruction count of the same work divided by the native time");
    let _ = std::fs::remove_dir_all(&out_dir);
}

fn main() {
    benches();
    native_limit();
    Criterion::default().configure_from_args().final_summary();
}
