//! The trace backend's proof: the execution record.
//!
//! It holds what a verifier needs to re-execute the run with nothing else at
//! hand (the ELF and the input) and what the run must end in (the final state
//! digest). It proves nothing cryptographically: it is dev mode, checked by
//! re-execution.
//!
//! Layout: magic `PNTRACE\0`, u16 version, u32 + ELF bytes, u32 + input bytes,
//! 32-byte final state digest.

use provernode_core::Digest;

pub const RECORD_MAGIC: [u8; 8] = *b"PNTRACE\0";
pub const RECORD_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub elf: Vec<u8>,
    pub input: Vec<u8>,
    pub state_digest: Digest,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 2 + 8 + self.elf.len() + self.input.len() + 32);
        out.extend_from_slice(&RECORD_MAGIC);
        out.extend_from_slice(&RECORD_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.elf.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.elf);
        out.extend_from_slice(&(self.input.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.input);
        out.extend_from_slice(self.state_digest.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, String> {
        let mut pos = 0usize;
        let mut take = |n: usize, what: &str| -> Result<&[u8], String> {
            let end = pos
                .checked_add(n)
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| format!("execution record truncated in {what}"))?;
            let s = &bytes[pos..end];
            pos = end;
            Ok(s)
        };
        if take(8, "magic")? != RECORD_MAGIC {
            return Err("not a trace execution record (bad magic)".into());
        }
        let version = u16::from_le_bytes([take(1, "version")?[0], take(1, "version")?[0]]);
        if version != RECORD_VERSION {
            return Err(format!(
                "execution record version {version} is not supported (this build reads {RECORD_VERSION})"
            ));
        }
        let elf_len = {
            let b = take(4, "ELF length")?;
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        let elf = take(elf_len, "ELF")?.to_vec();
        let input_len = {
            let b = take(4, "input length")?;
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        let input = take(input_len, "input")?.to_vec();
        let mut digest = [0u8; 32];
        digest.copy_from_slice(take(32, "state digest")?);
        if pos != bytes.len() {
            return Err(format!(
                "execution record has {} trailing bytes",
                bytes.len() - pos
            ));
        }
        Ok(Record {
            elf,
            input,
            state_digest: Digest(digest),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_truncation() {
        let r = Record {
            elf: vec![1, 2, 3],
            input: vec![4, 5],
            state_digest: Digest([7; 32]),
        };
        let bytes = r.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), r);
        for len in 0..bytes.len() {
            assert!(Record::decode(&bytes[..len]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Record::decode(&long).is_err());
    }
}
