//! The one-shot commands: programs, backends, execute, prove, verify, demo.
//! No queue and no server: each runs in this process and exits.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use provernode_backends::Registry;
use provernode_core::aggregate::AggregateOutput;
use provernode_core::{Abi, Backend, Limits, Program, ProofEnvelope, ProveOptions};
use provernode_guests::{Guest, InputArgs};
use serde_json::json;

use crate::cli::{Cli, Command, ProgramsAction, RunArgs};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Programs {
            action: Some(ProgramsAction::Inspect { file, keys, json }),
            ..
        } => inspect(&file, keys, json),
        Command::Programs {
            action: None,
            all,
            keys,
            json,
        } => programs(all, keys, json),
        Command::Backends { json } => backends(json),
        Command::Execute(args) => execute(&args),
        Command::Prove {
            run,
            output,
            proof_kind,
        } => prove(&run, output, proof_kind),
        Command::Verify {
            file,
            claim,
            max_cycles,
            json,
        } => verify(&file, &claim, max_cycles, json),
        other => bail!("internal: {other:?} is not a one-shot command"),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN).set_header(header.to_vec());
    t
}

fn programs(all: bool, keys: bool, json: bool) -> Result<()> {
    let guests: Vec<_> = provernode_guests::all()
        .iter()
        .filter(|g| all || !g.test_only)
        .collect();
    // What each built-in real backend binds a proof to (image id, vk hash).
    let registry = Registry::default();
    let key = |p: &provernode_core::Program| -> Result<Option<(String, &'static str, String)>> {
        for b in registry
            .available()
            .filter(|b| b.abis().contains(&p.abi()) && (keys || b.program_key_is_cheap()))
        {
            if let Some((what, value)) = b
                .program_key(p)
                .with_context(|| format!("{}: the {} key of {}", b.name(), p.abi(), p.name()))?
            {
                return Ok(Some((b.name().to_owned(), what, value)));
            }
        }
        Ok(None)
    };
    if json {
        let mut list = Vec::new();
        for g in &guests {
            let mut programs = Vec::new();
            for &abi in Abi::ALL.iter() {
                let p = g.program(abi);
                let mut entry = json!({"abi": abi.name(), "isa": abi.isa(), "program_id": p.id().to_string(), "elf_bytes": p.elf().len()});
                if let Some((backend, what, value)) = key(&p)? {
                    entry["backend_key"] = json!({"backend": backend, "kind": what, "value": value});
                }
                programs.push(entry);
            }
            list.push(json!({
                "name": g.name,
                "summary": g.summary,
                "input": g.input_help,
                "test_only": g.test_only,
                "programs": programs,
            }));
        }
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let mut t = table(&[
        "program",
        "abi",
        "program id (SHA-256 of the ELF)",
        "backend key",
        "ELF bytes",
        "input",
    ]);
    for g in &guests {
        for abi in Abi::ALL {
            let p = g.program(abi);
            let backend_key = match key(&p)? {
                Some((backend, what, value)) => format!("{backend} {what} {value}"),
                None => "-".into(),
            };
            t.add_row(vec![
                g.name.to_owned(),
                format!("{abi} ({})", abi.isa()),
                p.id().to_string(),
                backend_key,
                p.elf().len().to_string(),
                g.input_help.to_owned(),
            ]);
        }
    }
    println!("{t}");
    Ok(())
}

fn inspect(file: &Path, keys: bool, json: bool) -> Result<()> {
    let bytes = fs::read(file).with_context(|| format!("cannot read the program file {}", file.display()))?;
    let program = Program::from_elf(file.display().to_string(), bytes)?;
    let facts = provernode_backend_trace::inspect(&program).map_err(|why| {
        anyhow::anyhow!(
            "{} is not a valid {} program: {why}",
            file.display(),
            program.abi()
        )
    })?;
    let registry = Registry::default();
    let mut backend_keys = Vec::new();
    for b in registry
        .available()
        .filter(|b| b.abis().contains(&program.abi()) && (keys || b.program_key_is_cheap()))
    {
        if let Some((what, value)) = b
            .program_key(&program)
            .with_context(|| format!("{}: the key of {}", b.name(), program.name()))?
        {
            backend_keys.push((b.name(), what, value));
        }
    }
    let flags = |f: u32| {
        format!(
            "{}{}{}",
            if f & 4 != 0 { "r" } else { "-" },
            if f & 2 != 0 { "w" } else { "-" },
            if f & 1 != 0 { "x" } else { "-" }
        )
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "file": file.display().to_string(),
                "program_id": program.id().to_string(),
                "format": program.format().name(),
                "abi": program.abi().name(),
                "isa": program.abi().isa(),
                "entry": format!("{:#x}", facts.entry),
                "segments": facts.segments.iter().map(|s| json!({
                    "vaddr": format!("{:#x}", s.vaddr), "mem_size": s.mem_size,
                    "file_size": s.file_size, "flags": flags(s.flags),
                })).collect::<Vec<_>>(),
                "keys": backend_keys.iter().map(|(b, what, value)| json!({"backend": b, "kind": what, "value": value})).collect::<Vec<_>>(),
                "system_calls": facts.system_calls.iter().map(|c| json!({
                    "name": c.name, "code": c.code.map(|c| format!("{c:#x}")),
                    "emulated_by_trace": c.emulated_by_trace,
                })).collect::<Vec<_>>(),
                "unresolved_ecalls": facts.unresolved_ecalls,
                "sp1_untrusted_program_heap": facts.sp1_untrusted_heap.map(|(a, b)| [format!("{a:#x}"), format!("{b:#x}")]),
                "r0bf": facts.r0bf.as_ref().map(|(kind, version, kernel, known)| json!({
                    "abi_kind": kind, "abi_version": version, "kernel_sha256": kernel, "kernel_known": known,
                })),
            }))?
        );
        return Ok(());
    }
    let mut fields = vec![
        ("file", file.display().to_string()),
        ("program id", format!("{} (SHA-256 of the file)", program.id())),
        ("format", program.format().name().to_owned()),
        ("abi", format!("{} ({})", program.abi(), program.abi().isa())),
        ("entry", format!("{:#x}", facts.entry)),
    ];
    if let Some((kind, version, kernel, known)) = &facts.r0bf {
        fields.push(("r0bf abi", format!("{kind} {version}")));
        fields.push((
            "kernel",
            format!(
                "SHA-256 {kernel}{}",
                if *known {
                    " (the v1compat kernel this node runs)"
                } else {
                    " (NOT the kernel this node runs: refused)"
                }
            ),
        ));
    }
    for (b, what, value) in &backend_keys {
        fields.push(("key", format!("{b} {what} {value}")));
    }
    if !keys && program.abi() == Abi::Sp1 {
        fields.push((
            "key",
            "sp1 vk hash: add --keys (needs SP1's set-up, tens of seconds)".to_owned(),
        ));
    }
    if let Some((start, end)) = facts.sp1_untrusted_heap {
        fields.push((
            "sp1 mode",
            format!("untrusted program (.note.succinct: page protection and traps), heap {start:#x}..{end:#x}; trace emulates it, the sp1 backend refuses it (SP1 6.10's x86-64 executor does not implement it)"),
        ));
    }
    print_fields(&fields);
    let mut t = table(&["segment", "memory bytes", "file bytes", "flags"]);
    for s in &facts.segments {
        t.add_row(vec![
            format!("{:#x}", s.vaddr),
            s.mem_size.to_string(),
            s.file_size.to_string(),
            flags(s.flags),
        ]);
    }
    println!("{t}");
    let mut t = table(&["system call", "number", "trace"]);
    for c in &facts.system_calls {
        t.add_row(vec![
            c.name.clone(),
            c.code
                .map(|c| format!("{c:#x}"))
                .unwrap_or_else(|| "by name".into()),
            if c.emulated_by_trace {
                "emulated"
            } else {
                "not yet: stops with its name"
            }
            .to_owned(),
        ]);
    }
    println!("{t}");
    if facts.unresolved_ecalls > 0 {
        println!(
            "{} ecall site(s) take their call number from a register (a generic syscall wrapper); the calls listed are those with a constant number",
            facts.unresolved_ecalls
        );
    }
    Ok(())
}

fn backends(json: bool) -> Result<()> {
    let registry = Registry::default();
    if json {
        let list: Vec<_> = registry
            .all()
            .iter()
            .map(|b| {
                json!({
                    "name": b.name(),
                    "abis": b.abis().iter().map(|a| a.name()).collect::<Vec<_>>(),
                    "proof_kinds": b.proof_kinds(),
                    "available": b.available().is_ok(),
                    "unavailable_reason": b.available().err().map(|u| u.reason),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let mut t = table(&["backend", "abis", "proof kinds", "status"]);
    for b in registry.all() {
        t.add_row(vec![
            b.name().to_owned(),
            b.abis().iter().map(|a| a.name()).collect::<Vec<_>>().join(", "),
            b.proof_kinds().join(", "),
            match b.available() {
                Ok(()) => "available".to_owned(),
                Err(u) => format!("unavailable: {}", u.reason),
            },
        ]);
    }
    println!("{t}");
    Ok(())
}

/// A program, its input and the backend to run it on, resolved from flags.
struct Job {
    program: Program,
    guest: Option<&'static Guest>,
    input: Vec<u8>,
    backend: Arc<dyn Backend>,
    limits: Limits,
}

impl Job {
    fn describe_input(&self) -> String {
        match self.guest {
            Some(g) => g.describe_input(&self.input),
            None => format!("{} bytes", self.input.len()),
        }
    }

    fn describe_output(&self, output: &[u8]) -> String {
        describe_output(self.guest, output)
    }
}

fn describe_output(guest: Option<&Guest>, output: &[u8]) -> String {
    match guest {
        Some(g) => g.describe_output(output),
        None if output.is_empty() => "(empty)".to_owned(),
        None => format!("0x{}", hex::encode(output)),
    }
}

/// The proofs given with `--of`, and the ABI they were made for.
fn inner_proofs(paths: &[PathBuf]) -> Result<Option<(Vec<u8>, Abi)>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut inner = Vec::with_capacity(paths.len());
    for (index, path) in paths.iter().enumerate() {
        let bytes =
            fs::read(path).with_context(|| format!("--of {index}: cannot read {}", path.display()))?;
        inner.push(ProofEnvelope::decode(&bytes).with_context(|| {
            format!(
                "--of {index}: {} is not a readable proof envelope",
                path.display()
            )
        })?);
    }
    let abi = inner[0].abi;
    let input = provernode_core::aggregate::AggregateInput { inner }.encode()?;
    Ok(Some((input, abi)))
}

fn resolve(args: &RunArgs, registry: &Registry) -> Result<Job> {
    let backend = registry.get(&args.backend)?;
    backend.available()?;
    let aggregate = inner_proofs(&args.of)?;
    let (program, guest) = match provernode_guests::find(&args.program) {
        Some(guest) => {
            let abi = match (args.abi, backend.abis(), &aggregate) {
                (Some(abi), _, _) => abi,
                (None, _, Some((_, abi))) => *abi,
                (None, [only], None) => *only,
                (None, _, None) => Abi::Risc0,
            };
            if !backend.abis().contains(&abi) {
                bail!(
                    "backend `{}` runs {} programs, not {abi}; drop --abi or pick another backend",
                    backend.name(),
                    backend
                        .abis()
                        .iter()
                        .map(|a| a.name())
                        .collect::<Vec<_>>()
                        .join(" and ")
                );
            }
            (guest.program(abi), Some(guest))
        }
        None => {
            let path = Path::new(&args.program);
            if !path.exists() {
                let names: Vec<_> = provernode_guests::all().iter().map(|g| g.name).collect();
                bail!(
                    "`{}` is neither a built-in guest ({}) nor an existing file",
                    args.program,
                    names.join(", ")
                );
            }
            let bytes =
                fs::read(path).with_context(|| format!("cannot read the program file {}", path.display()))?;
            let program = Program::from_elf(path.display().to_string(), bytes)?;
            if let Some(abi) = args.abi {
                if abi != program.abi() {
                    bail!(
                        "{} is an ELF{} ({} ABI), but --abi {abi} was given; the ELF class decides the ABI of a file",
                        path.display(),
                        if program.abi().elf_class() == 1 { 32 } else { 64 },
                        program.abi()
                    );
                }
            }
            (program, None)
        }
    };
    let f = &args.input;
    let input = if let Some((input, _)) = aggregate {
        input
    } else if let Some(items) = f.items()? {
        if f.stdin_file.is_some() && program.abi() != Abi::Sp1 {
            bail!("--stdin-file holds an SP1Stdin, but {} is a {} program; give its input with --input-file or --input-item", program.name(), program.abi());
        }
        provernode_core::input::from_items(program.abi(), &items)
    } else if let Some(path) = &f.input_file {
        fs::read(path).with_context(|| format!("cannot read the input file {}", path.display()))?
    } else if let Some(h) = &f.input_hex {
        hex::decode(h.trim()).with_context(|| format!("--input-hex {h:?} is not valid hex"))?
    } else {
        let typed = InputArgs {
            n: f.n,
            seed: f.seed,
            rounds: f.rounds,
            text: f.text.clone(),
        };
        match guest {
            Some(g) => g.encode_input(&typed)?,
            None if typed != InputArgs::default() => bail!(
                "typed input flags (--n, --rounds, --seed, --text) work only with built-in guests; give raw input bytes with --input-file or --input-hex"
            ),
            None => Vec::new(),
        }
    };
    Ok(Job {
        program,
        guest,
        input,
        backend,
        limits: Limits {
            max_cycles: args.max_cycles,
            max_memory_bytes: args.max_memory,
        },
    })
}

fn execute(args: &RunArgs) -> Result<()> {
    let registry = Registry::default();
    let job = resolve(args, &registry)?;
    let started = Instant::now();
    let exec = job.backend.execute(&job.program, &job.input, &job.limits)?;
    let elapsed = started.elapsed();
    if !exec.stdout.is_empty() {
        eprintln!(
            "guest stdout: {}",
            String::from_utf8_lossy(&exec.stdout).trim_end()
        );
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "program": job.program.name(),
                "program_id": job.program.id().to_string(),
                "abi": job.program.abi().name(),
                "backend": job.backend.name(),
                "input_hex": hex::encode(&job.input),
                "cycles": exec.cycles,
                "seconds": elapsed.as_secs_f64(),
                "public_output_hex": hex::encode(&exec.public_output),
                "output": job.describe_output(&exec.public_output),
            }))?
        );
        return Ok(());
    }
    print_fields(&[
        ("program", program_line(&job.program)),
        ("backend", job.backend.name().to_owned()),
        ("input", job.describe_input()),
        ("cycles", thousands(exec.cycles)),
        ("time", human_duration(elapsed)),
        ("output", job.describe_output(&exec.public_output)),
        ("output hex", hex::encode(&exec.public_output)),
    ]);
    Ok(())
}

fn prove(args: &RunArgs, output: Option<PathBuf>, proof_kind: Option<String>) -> Result<()> {
    let registry = Registry::default();
    let job = resolve(args, &registry)?;
    let options = ProveOptions {
        limits: job.limits,
        proof_kind,
        // A one-shot proof runs in this process, under no cage of ours.
        prover_memory_bytes: None,
        split_po2: None,
    };
    let path = output.unwrap_or_else(|| {
        let stem = job.guest.map(|g| g.name.to_owned()).unwrap_or_else(|| {
            Path::new(job.program.name())
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "program".to_owned())
        });
        PathBuf::from(format!(
            "{stem}.{}.{}.proof",
            job.program.abi(),
            job.backend.name()
        ))
    });
    // Before minutes of proving, not after.
    check_writable(&path)?;
    let started = Instant::now();
    let progress = Phase::start(format!("proving on {}", job.backend.name()), args.json);
    let proved = job.backend.prove(&job.program, &job.input, &options);
    progress.finish();
    let envelope = proved?;
    let elapsed = started.elapsed();
    let bytes = envelope.encode()?;
    fs::write(&path, &bytes).with_context(|| format!("cannot write the proof to {}", path.display()))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "proof_file": path.display().to_string(),
                "proof_bytes": bytes.len(),
                "backend": envelope.backend,
                "proof_kind": envelope.proof_kind,
                "program_id": envelope.program_id.to_string(),
                "abi": envelope.abi.name(),
                "cycles": envelope.cycles,
                "seconds": elapsed.as_secs_f64(),
                "public_output_hex": hex::encode(&envelope.public_output),
                "output": job.describe_output(&envelope.public_output),
            }))?
        );
        return Ok(());
    }
    print_fields(&[
        ("program", program_line(&job.program)),
        (
            "backend",
            format!("{} ({})", envelope.backend, envelope.proof_kind),
        ),
        ("input", job.describe_input()),
        ("cycles", thousands(envelope.cycles)),
        ("prove time", human_duration(elapsed)),
        ("output", job.describe_output(&envelope.public_output)),
        (
            "proof",
            format!("{} ({})", path.display(), human_bytes(bytes.len())),
        ),
    ]);
    Ok(())
}

/// A long step shown while it runs: a spinner with the elapsed time on a
/// terminal (stderr), one line otherwise; nothing with `--json` (scripts).
struct Phase(Option<indicatif::ProgressBar>);

impl Phase {
    fn start(what: String, quiet: bool) -> Phase {
        use std::io::IsTerminal;
        if quiet {
            return Phase(None);
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("{what}...");
            return Phase(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(what);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Phase(Some(bar))
    }

    fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Whether a file can be written at `path`: its directory exists and is
/// writable, and it is not a directory itself.
fn check_writable(path: &Path) -> Result<()> {
    use nix::unistd::{access, AccessFlags};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot write the proof to {}: the directory {} does not exist; create it or give another -o",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail!(
            "cannot write the proof to {}: it is a directory; give a file name with -o",
            path.display()
        );
    }
    let target = if path.exists() { path } else { dir };
    access(target, AccessFlags::W_OK).with_context(|| {
        format!(
            "cannot write the proof to {}: {} is not writable",
            path.display(),
            target.display()
        )
    })?;
    Ok(())
}

fn verify(file: &Path, claims: &[PathBuf], max_cycles: u64, json: bool) -> Result<()> {
    let result = verify_file(file, claims, max_cycles, json);
    if let (true, Err(e)) = (json, &result) {
        // Scripts asked for JSON: they get it on failure too (and the exit code).
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"verified": false, "file": file.display().to_string(), "error": format!("{e:#}")})
            )?
        );
    }
    result
}

fn read_envelope(file: &Path) -> Result<ProofEnvelope> {
    let bytes = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    ProofEnvelope::decode(&bytes)
        .with_context(|| format!("{} is not a readable proof envelope", file.display()))
}

/// One claim checked against an aggregate: where it is and its path.
struct Inclusion {
    file: PathBuf,
    index: usize,
    path: Vec<[u8; 32]>,
}

/// Verifies each proof in `claims` and finds its claim in `aggregate`,
/// checking the inclusion path against the root.
fn check_claims(
    registry: &Registry,
    aggregate: &AggregateOutput,
    claims: &[PathBuf],
) -> Result<Vec<Inclusion>> {
    let mut found = Vec::new();
    for file in claims {
        let inner = read_envelope(file)?;
        registry
            .verify(&inner)
            .with_context(|| format!("--claim {} does NOT verify", file.display()))?;
        let claim = registry
            .claim_of(&inner)
            .with_context(|| format!("--claim {}: its claim", file.display()))?;
        let index = aggregate.position(&claim).with_context(|| {
            format!(
                "--claim {}: the aggregate does NOT cover its claim (program key {}, output digest {})",
                file.display(),
                hex::encode(claim.program_key),
                hex::encode(claim.output_digest)
            )
        })?;
        let path = aggregate
            .path(index)
            .context("internal: no path to a claim the aggregate lists")?;
        if !provernode_core::aggregate::verify_inclusion(
            &aggregate.root,
            aggregate.claims.len(),
            index,
            &claim.leaf(),
            &path,
        ) {
            bail!("internal: the inclusion path of claim {index} does not check against the root");
        }
        found.push(Inclusion {
            file: file.clone(),
            index,
            path,
        });
    }
    Ok(found)
}

fn verify_file(file: &Path, claims: &[PathBuf], max_cycles: u64, json: bool) -> Result<()> {
    let envelope = read_envelope(file)?;
    let registry = Registry::new(Limits {
        max_cycles,
        ..Limits::default()
    });
    let started = Instant::now();
    let verified = registry
        .verify(&envelope)
        .with_context(|| format!("{} does NOT verify", file.display()))?;
    let elapsed = started.elapsed();
    let guest = provernode_guests::find_by_id(verified.program_id);
    let program = guest.map(|(g, _)| g.name).unwrap_or("(not a built-in guest)");
    let aggregate = match guest {
        Some((g, _)) if g.name == provernode_guests::AGGREGATE => {
            Some(AggregateOutput::decode(&verified.public_output).with_context(|| {
                format!(
                    "{} is an aggregate whose output does not read as one",
                    file.display()
                )
            })?)
        }
        _ => None,
    };
    if !claims.is_empty() && aggregate.is_none() {
        bail!(
            "--claim checks a claim against an aggregate, and {} is a proof of {program}",
            file.display()
        );
    }
    let inclusions = match &aggregate {
        Some(a) => check_claims(&registry, a, claims)?,
        None => Vec::new(),
    };
    let claims_json = aggregate.as_ref().map(|a| {
        a.claims
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "index": i,
                    "program_key": hex::encode(c.program_key),
                    "output_digest": hex::encode(c.output_digest),
                    "program": known_program(&c.program_key, verified.abi),
                })
            })
            .collect::<Vec<_>>()
    });
    let inclusions_json: Vec<_> = inclusions
        .iter()
        .map(|i| {
            json!({
                "file": i.file.display().to_string(),
                "index": i.index,
                "path": i.path.iter().map(hex::encode).collect::<Vec<_>>(),
            })
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "aggregate": aggregate.as_ref().map(|a| json!({
                    "claims": claims_json,
                    "root": hex::encode(a.root),
                    "checked_claims": inclusions_json,
                })),
                "verified": true,
                "backend": verified.backend,
                "proof_kind": verified.proof_kind,
                "program": program,
                "program_id": verified.program_id.to_string(),
                "abi": verified.abi.name(),
                "input_digest": verified.input_digest.to_string(),
                "cycles": verified.cycles,
                "public_output_hex": hex::encode(&verified.public_output),
                "output": describe_output(guest.map(|(g, _)| g), &verified.public_output),
                "seconds": elapsed.as_secs_f64(),
            }))?
        );
        return Ok(());
    }
    print_fields(&[
        ("verified", "yes".to_owned()),
        (
            "backend",
            format!(
                "{} {} ({})",
                verified.backend, envelope.backend_version, verified.proof_kind
            ),
        ),
        (
            "program",
            format!("{program} [{}, id {}]", verified.abi, verified.program_id),
        ),
        ("input digest", verified.input_digest.to_string()),
        ("cycles", thousands(verified.cycles)),
        (
            "output",
            describe_output(guest.map(|(g, _)| g), &verified.public_output),
        ),
        ("verify time", human_duration(elapsed)),
    ]);
    if let Some(a) = &aggregate {
        println!();
        println!(
            "covers {} claims, Merkle root {}",
            a.claims.len(),
            hex::encode(a.root)
        );
        let mut t = table(&["#", "program", "program key", "output SHA-256"]);
        for (i, c) in a.claims.iter().enumerate() {
            t.add_row(vec![
                i.to_string(),
                known_program(&c.program_key, verified.abi).unwrap_or_default(),
                hex::encode(c.program_key),
                hex::encode(c.output_digest),
            ]);
        }
        println!("{t}");
        for i in &inclusions {
            println!(
                "claim of {} is #{} (inclusion path checked against the root: {})",
                i.file.display(),
                i.index,
                if i.path.is_empty() {
                    "it is the root".to_owned()
                } else {
                    i.path.iter().map(hex::encode).collect::<Vec<_>>().join(" ")
                }
            );
        }
    }
    Ok(())
}

/// The built-in guest a claim's program key names, when it names one (for
/// RISC Zero the image id; trace's SP1 stand-in key too).
fn known_program(key: &[u8; 32], abi: Abi) -> Option<String> {
    let trace = provernode_backend_trace::TraceBackend::new();
    provernode_guests::all().iter().find_map(|g| {
        let program = g.program(abi);
        (trace.claim_key(&program).ok().flatten().as_ref() == Some(key)).then(|| g.name.to_owned())
    })
}

fn program_line(p: &Program) -> String {
    format!("{} [{}, id {}]", p.name(), p.abi(), p.id())
}

fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields {
        println!("{k:<width$}  {v}");
    }
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

pub fn human_bytes(n: usize) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2048), "2.0 KiB");
        assert_eq!(human_duration(Duration::from_micros(250)), "250 µs");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.50 s");
    }
}
