//! The built-in guest programs.
//!
//! Each guest is written once in C (`guests/programs/*.c`) against a tiny
//! runtime per zkVM ABI (`guests/runtime/`), and built by `guests/build.sh`
//! into one ELF per ABI under `elf/`. The ELFs are committed, so building
//! this crate needs no cross compiler; CI rebuilds them and fails on any
//! byte of difference.
//!
//! Beside each ELF this crate keeps the guest's input encoding (typed flags
//! to bytes), a description of its output, and a Rust model of what it must
//! output, which tests use as the known answer.
//!
//! Architecture invariant: this crate only describes programs; it executes
//! nothing.

use provernode_core::aggregate::{self, AggregateInput, AggregateOutput};
use provernode_core::{Abi, Program};
use sha2::{Digest as _, Sha256};

/// Typed input values, as given on the command line. Each guest reads the
/// ones it needs and rejects the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputArgs {
    /// fibonacci: the index n.
    pub n: Option<u32>,
    /// sha256-chain: the 32-byte seed (default all zeros).
    pub seed: Option<[u8; 32]>,
    /// sha256-chain: the number of rounds.
    pub rounds: Option<u32>,
    /// sha256: the text to hash.
    pub text: Option<String>,
}

impl InputArgs {
    fn given(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.n.is_some() {
            v.push("--n");
        }
        if self.seed.is_some() {
            v.push("--seed");
        }
        if self.rounds.is_some() {
            v.push("--rounds");
        }
        if self.text.is_some() {
            v.push("--text");
        }
        v
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("guest `{guest}` needs {flag}: {help}")]
    Missing {
        guest: &'static str,
        flag: &'static str,
        help: &'static str,
    },
    #[error("guest `{guest}` does not take {flag}; its input is: {help}")]
    Unexpected {
        guest: &'static str,
        flag: &'static str,
        help: &'static str,
    },
}

/// A built-in guest program.
pub struct Guest {
    pub name: &'static str,
    pub summary: &'static str,
    /// How to give its input, for help texts and errors.
    pub input_help: &'static str,
    /// Test guests (endless loop, memory hog) exist to exercise limits; the
    /// demo skips them.
    pub test_only: bool,
    elf_risc0: &'static [u8],
    elf_sp1: &'static [u8],
    encode: fn(&Guest, &InputArgs) -> Result<Vec<u8>, InputError>,
    describe_input: fn(&[u8]) -> String,
    describe_output: fn(&[u8]) -> String,
    reference: fn(&[u8]) -> Option<Vec<u8>>,
    demo_inputs: fn() -> Vec<InputArgs>,
}

impl Guest {
    pub fn elf(&self, abi: Abi) -> &'static [u8] {
        match abi {
            Abi::Risc0 => self.elf_risc0,
            Abi::Sp1 => self.elf_sp1,
        }
    }

    pub fn program(&self, abi: Abi) -> Program {
        // The committed ELFs are checked by this crate's tests, so this cannot
        // fail for a built-in guest; keep the error path anyway.
        match Program::from_elf(self.name, self.elf(abi)) {
            Ok(p) => p,
            Err(e) => panic!("built-in guest {} has a broken {abi} ELF: {e}", self.name),
        }
    }

    /// Encodes typed input flags into the guest's input bytes.
    pub fn encode_input(&self, args: &InputArgs) -> Result<Vec<u8>, InputError> {
        (self.encode)(self, args)
    }

    /// A short human description of raw input bytes.
    pub fn describe_input(&self, input: &[u8]) -> String {
        (self.describe_input)(input)
    }

    /// A short human description of the public output.
    pub fn describe_output(&self, output: &[u8]) -> String {
        (self.describe_output)(output)
    }

    /// What the guest must commit for `input`, computed natively; `None` for
    /// inputs the guest rejects or guests that never finish.
    pub fn reference_output(&self, input: &[u8]) -> Option<Vec<u8>> {
        (self.reference)(input)
    }

    /// The inputs `provernode demo` runs.
    pub fn demo_inputs(&self) -> Vec<InputArgs> {
        (self.demo_inputs)()
    }

    fn only(&self, args: &InputArgs, allowed: &[&'static str]) -> Result<(), InputError> {
        match args.given().into_iter().find(|f| !allowed.contains(f)) {
            Some(flag) => Err(InputError::Unexpected {
                guest: self.name,
                flag,
                help: self.input_help,
            }),
            None => Ok(()),
        }
    }

    fn missing(&self, flag: &'static str) -> InputError {
        InputError::Missing {
            guest: self.name,
            flag,
            help: self.input_help,
        }
    }
}

macro_rules! elf {
    ($abi:literal, $name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/elf/",
            $abi,
            "/",
            $name,
            ".elf"
        ))
    };
}

static GUESTS: [Guest; 6] = [
    Guest {
        name: "fibonacci",
        summary: "fib(n) mod 2^64; output n (u32 LE) and fib(n) (u64 LE)",
        input_help: "--n <u32> (input bytes: n as u32 little-endian)",
        test_only: false,
        elf_risc0: elf!("risc0", "fibonacci"),
        elf_sp1: elf!("sp1", "fibonacci"),
        encode: |g, a| {
            g.only(a, &["--n"])?;
            let n = a.n.ok_or_else(|| g.missing("--n"))?;
            Ok(n.to_le_bytes().to_vec())
        },
        describe_input: |i| match <[u8; 4]>::try_from(i) {
            Ok(b) => format!("n={}", u32::from_le_bytes(b)),
            Err(_) => raw(i),
        },
        describe_output: |o| match (o.get(..4), o.get(4..12)) {
            (Some(n), Some(f)) if o.len() == 12 => format!(
                "n={} fib={}",
                u32::from_le_bytes(n.try_into().unwrap_or_default()),
                u64::from_le_bytes(f.try_into().unwrap_or_default())
            ),
            _ => raw(o),
        },
        reference: |i| {
            let n = u32::from_le_bytes(<[u8; 4]>::try_from(i).ok()?);
            let mut out = n.to_le_bytes().to_vec();
            out.extend_from_slice(&fibonacci(n).to_le_bytes());
            Some(out)
        },
        demo_inputs: || {
            [10, 1000]
                .into_iter()
                .map(|n| InputArgs {
                    n: Some(n),
                    ..Default::default()
                })
                .collect()
        },
    },
    Guest {
        name: "sha256-chain",
        summary: "SHA-256 applied `rounds` times to a 32-byte seed; output the final digest",
        input_help: "--rounds <u32> [--seed <64 hex digits, default zeros>] (input bytes: seed, then rounds as u32 LE)",
        test_only: false,
        elf_risc0: elf!("risc0", "sha256-chain"),
        elf_sp1: elf!("sp1", "sha256-chain"),
        encode: |g, a| {
            g.only(a, &["--seed", "--rounds"])?;
            let rounds = a.rounds.ok_or_else(|| g.missing("--rounds"))?;
            let mut bytes = a.seed.unwrap_or([0; 32]).to_vec();
            bytes.extend_from_slice(&rounds.to_le_bytes());
            Ok(bytes)
        },
        describe_input: |i| match (i.get(..32), i.get(32..36)) {
            (Some(seed), Some(r)) if i.len() == 36 => format!(
                "seed={}.. rounds={}",
                hex::encode(&seed[..4]),
                u32::from_le_bytes(r.try_into().unwrap_or_default())
            ),
            _ => raw(i),
        },
        describe_output: |o| {
            if o.len() == 32 {
                format!("digest={}", hex::encode(o))
            } else {
                raw(o)
            }
        },
        reference: |i| {
            if i.len() != 36 {
                return None;
            }
            let mut d: [u8; 32] = i[..32].try_into().ok()?;
            let rounds = u32::from_le_bytes(i[32..36].try_into().ok()?);
            for _ in 0..rounds {
                d = Sha256::digest(d).into();
            }
            Some(d.to_vec())
        },
        demo_inputs: || {
            [10, 1000]
                .into_iter()
                .map(|r| InputArgs {
                    rounds: Some(r),
                    ..Default::default()
                })
                .collect()
        },
    },
    Guest {
        name: "sha256",
        summary: "SHA-256 of the whole input; output the 32-byte digest",
        input_help: "--text <string>, or any bytes with --input-file",
        test_only: false,
        elf_risc0: elf!("risc0", "sha256"),
        elf_sp1: elf!("sp1", "sha256"),
        encode: |g, a| {
            g.only(a, &["--text"])?;
            let text = a.text.as_ref().ok_or_else(|| g.missing("--text"))?;
            Ok(text.as_bytes().to_vec())
        },
        describe_input: |i| match std::str::from_utf8(i) {
            Ok(s) if s.len() <= 24 => format!("text={s:?}"),
            _ => format!("{} bytes", i.len()),
        },
        describe_output: |o| {
            if o.len() == 32 {
                format!("sha256={}", hex::encode(o))
            } else {
                raw(o)
            }
        },
        reference: |i| Some(Sha256::digest(i).to_vec()),
        demo_inputs: || {
            vec![InputArgs {
                text: Some("abc".into()),
                ..Default::default()
            }]
        },
    },
    Guest {
        name: "spin",
        summary: "test guest: loops forever (exercises cycle limits and timeouts)",
        input_help: "no input",
        test_only: true,
        elf_risc0: elf!("risc0", "spin"),
        elf_sp1: elf!("sp1", "spin"),
        encode: |g, a| {
            g.only(a, &[])?;
            Ok(Vec::new())
        },
        describe_input: |i| format!("{} bytes", i.len()),
        describe_output: raw,
        reference: |_| None,
        demo_inputs: Vec::new,
    },
    Guest {
        name: "memhog",
        summary: "test guest: touches new memory until none is left (exercises memory limits)",
        input_help: "no input",
        test_only: true,
        elf_risc0: elf!("risc0", "memhog"),
        elf_sp1: elf!("sp1", "memhog"),
        encode: |g, a| {
            g.only(a, &[])?;
            Ok(Vec::new())
        },
        describe_input: |i| format!("{} bytes", i.len()),
        describe_output: raw,
        reference: |_| None,
        demo_inputs: Vec::new,
    },
    Guest {
        name: "aggregate",
        summary: "verifies N proofs with the zkVM's own verify call; output N, the Merkle root over the claims and each claim (program key, SHA-256 of its output)",
        input_help: "the proofs of other tasks: `provernode submit aggregate --of ID...`, `provernode prove aggregate --of PROOF...` (input bytes: provernode_core::aggregate)",
        test_only: false,
        elf_risc0: elf!("risc0", "aggregate"),
        elf_sp1: elf!("sp1", "aggregate"),
        encode: |g, _| Err(g.missing("--of")),
        describe_input: |i| match AggregateInput::decode(i) {
            Ok(input) => format!("{} proofs", input.inner.len()),
            Err(_) => format!("{} bytes", i.len()),
        },
        describe_output: |o| match AggregateOutput::decode(o) {
            Ok(out) => format!("{} claims root={}", out.claims.len(), hex::encode(out.root)),
            Err(_) => raw(o),
        },
        // The guest's input is the claims; a task's input is the proofs,
        // whose program keys only a backend can compute.
        reference: |i| {
            let claims = aggregate::decode_claims(i).ok()?;
            Some(AggregateOutput::of(&claims).encode())
        },
        demo_inputs: Vec::new,
    },
];

/// The built-in guest that aggregates proofs.
pub const AGGREGATE: &str = "aggregate";

fn raw(bytes: &[u8]) -> String {
    if bytes.len() <= 16 {
        format!("0x{}", hex::encode(bytes))
    } else {
        format!("0x{}.. ({} bytes)", hex::encode(&bytes[..8]), bytes.len())
    }
}

/// fib(n) mod 2^64 with fib(0) = 0, fib(1) = 1.
pub fn fibonacci(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let next = a.wrapping_add(b);
        a = b;
        b = next;
    }
    a
}

/// Every built-in guest, production ones first.
pub fn all() -> &'static [Guest] {
    &GUESTS
}

pub fn find(name: &str) -> Option<&'static Guest> {
    GUESTS.iter().find(|g| g.name == name)
}

/// The built-in guest whose ELF (for either ABI) has this program id.
pub fn find_by_id(id: provernode_core::ProgramId) -> Option<(&'static Guest, Abi)> {
    GUESTS.iter().find_map(|g| {
        Abi::ALL
            .into_iter()
            .find(|&abi| provernode_core::ProgramId::of_elf(g.elf(abi)) == id)
            .map(|abi| (g, abi))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_elf_loads_with_the_right_abi() {
        for g in all() {
            for abi in Abi::ALL {
                let p = Program::from_elf(g.name, g.elf(abi)).unwrap();
                assert_eq!(p.abi(), abi, "{} {abi}", g.name);
                assert_eq!(find_by_id(p.id()).map(|(g, a)| (g.name, a)), Some((g.name, abi)));
            }
        }
    }

    #[test]
    fn reference_fibonacci_known_answers() {
        assert_eq!(fibonacci(0), 0);
        assert_eq!(fibonacci(1), 1);
        assert_eq!(fibonacci(10), 55);
        assert_eq!(fibonacci(90), 2_880_067_194_370_816_120);
        assert_eq!(fibonacci(1000), 817_770_325_994_397_771);
        assert_eq!(fibonacci(100_000), 2_754_320_626_097_736_315);
    }

    #[test]
    fn inputs_encode_and_reject_wrong_flags() {
        let fib = find("fibonacci").unwrap();
        let a = InputArgs {
            n: Some(7),
            ..Default::default()
        };
        assert_eq!(fib.encode_input(&a).unwrap(), vec![7, 0, 0, 0]);
        assert!(matches!(
            fib.encode_input(&InputArgs::default()),
            Err(InputError::Missing { flag: "--n", .. })
        ));
        let bad = InputArgs {
            n: Some(1),
            rounds: Some(2),
            ..Default::default()
        };
        assert!(matches!(
            fib.encode_input(&bad),
            Err(InputError::Unexpected { flag: "--rounds", .. })
        ));
        let chain = find("sha256-chain").unwrap();
        let input = chain
            .encode_input(&InputArgs {
                rounds: Some(3),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(input.len(), 36);
        assert_eq!(&input[32..], &3u32.to_le_bytes());
        assert_eq!(chain.describe_input(&input), "seed=00000000.. rounds=3");
    }

    #[test]
    fn sha256_chain_reference_starts_from_the_seed() {
        let chain = find("sha256-chain").unwrap();
        let mut input = vec![0u8; 32];
        input.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(chain.reference_output(&input).unwrap(), vec![0u8; 32]);
        input[32] = 1;
        assert_eq!(
            hex::encode(chain.reference_output(&input).unwrap()),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
    }
}
