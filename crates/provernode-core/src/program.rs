use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::ProgramId;

/// A zkVM guest ABI: how a RISC-V ELF talks to its host (entry, memory
/// layout, system calls, how public output is committed). The same C source
/// is compiled once per ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Abi {
    /// RISC Zero (risc0-zkvm 3.x, v1compat kernel): RV32IM, ELF32.
    Risc0,
    /// SP1 v6: RV64IM, ELF64.
    Sp1,
}

impl Abi {
    pub const ALL: [Abi; 2] = [Abi::Risc0, Abi::Sp1];

    pub fn name(self) -> &'static str {
        match self {
            Abi::Risc0 => "risc0",
            Abi::Sp1 => "sp1",
        }
    }

    /// A stable one-byte code used in the proof envelope.
    pub fn code(self) -> u8 {
        match self {
            Abi::Risc0 => 1,
            Abi::Sp1 => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<Abi> {
        match code {
            1 => Some(Abi::Risc0),
            2 => Some(Abi::Sp1),
            _ => None,
        }
    }

    /// The ELF class (`EI_CLASS`) this ABI uses: 1 = ELF32, 2 = ELF64.
    pub fn elf_class(self) -> u8 {
        match self {
            Abi::Risc0 => 1,
            Abi::Sp1 => 2,
        }
    }

    /// The guest memory the ABI gives a program: `[lo, hi)`.
    pub fn address_space(self) -> (u64, u64) {
        match self {
            // risc0 v1compat: user memory 0x4000 .. 0xC000_0000.
            Abi::Risc0 => (0x4000, 0xC000_0000),
            // SP1 v6: a 2^37-byte space; the first page is kept unmapped so
            // null pointer accesses fault.
            Abi::Sp1 => (0x1000, 1 << 37),
        }
    }

    pub fn isa(self) -> &'static str {
        match self {
            Abi::Risc0 => "RV32IM",
            Abi::Sp1 => "RV64IM",
        }
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Abi {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "risc0" => Ok(Abi::Risc0),
            "sp1" => Ok(Abi::Sp1),
            other => Err(format!("unknown ABI {other:?}: expected `risc0` or `sp1`")),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProgramError {
    #[error("`{name}` is not an ELF file (it does not start with \\x7fELF); pass a RISC-V ELF built for the risc0 or sp1 ABI")]
    NotElf { name: String },
    #[error("`{name}` is not a little-endian RISC-V executable ({reason}); build it with riscv64-unknown-elf-gcc for rv32im (risc0) or rv64im (sp1)")]
    NotRiscv { name: String, reason: String },
}

/// A guest program: an ELF, its identity and the ABI its ELF class selects.
#[derive(Clone)]
pub struct Program {
    name: String,
    abi: Abi,
    id: ProgramId,
    elf: Arc<[u8]>,
}

impl Program {
    /// Wraps ELF bytes, checking just enough of the header to pick the ABI.
    /// Backends validate the rest when they load it.
    pub fn from_elf(name: impl Into<String>, elf: impl Into<Arc<[u8]>>) -> Result<Program, ProgramError> {
        let name = name.into();
        let elf: Arc<[u8]> = elf.into();
        if elf.len() < 20 || &elf[..4] != b"\x7fELF" {
            return Err(ProgramError::NotElf { name });
        }
        let abi = match elf[4] {
            1 => Abi::Risc0,
            2 => Abi::Sp1,
            other => {
                return Err(ProgramError::NotRiscv {
                    name,
                    reason: format!("unknown ELF class {other}"),
                })
            }
        };
        if elf[5] != 1 {
            return Err(ProgramError::NotRiscv {
                name,
                reason: "big-endian".into(),
            });
        }
        let machine = u16::from_le_bytes([elf[18], elf[19]]);
        if machine != 243 {
            return Err(ProgramError::NotRiscv {
                name,
                reason: format!("e_machine is {machine}, RISC-V is 243"),
            });
        }
        Ok(Program {
            id: ProgramId::of_elf(&elf),
            name,
            abi,
            elf,
        })
    }

    /// A name for messages: the built-in guest name or the file path.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn abi(&self) -> Abi {
        self.abi
    }

    pub fn id(&self) -> ProgramId {
        self.id
    }

    pub fn elf(&self) -> &[u8] {
        &self.elf
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("abi", &self.abi)
            .field("id", &self.id)
            .field("elf_len", &self.elf.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, machine: u16) -> Vec<u8> {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = class;
        elf[5] = data;
        elf[18..20].copy_from_slice(&machine.to_le_bytes());
        elf
    }

    #[test]
    fn picks_the_abi_from_the_elf_class() {
        let p = Program::from_elf("a", header(1, 1, 243)).unwrap();
        assert_eq!(p.abi(), Abi::Risc0);
        let p = Program::from_elf("b", header(2, 1, 243)).unwrap();
        assert_eq!(p.abi(), Abi::Sp1);
    }

    #[test]
    fn rejects_what_is_not_a_riscv_elf() {
        assert!(matches!(
            Program::from_elf("x", b"#!/bin/sh\necho hi\n".to_vec()),
            Err(ProgramError::NotElf { .. })
        ));
        assert!(matches!(
            Program::from_elf("x", header(1, 1, 62)),
            Err(ProgramError::NotRiscv { .. })
        ));
        assert!(matches!(
            Program::from_elf("x", header(3, 1, 243)),
            Err(ProgramError::NotRiscv { .. })
        ));
        assert!(matches!(
            Program::from_elf("x", header(1, 2, 243)),
            Err(ProgramError::NotRiscv { .. })
        ));
    }

    #[test]
    fn abi_codes_round_trip() {
        for abi in Abi::ALL {
            assert_eq!(Abi::from_code(abi.code()), Some(abi));
            assert_eq!(abi.name().parse::<Abi>(), Ok(abi));
        }
        assert_eq!(Abi::from_code(0), None);
    }
}
