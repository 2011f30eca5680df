//! The proof envelope: a versioned, self-describing binary file that carries
//! one proof and everything needed to check it without other context.
//!
//! Layout (all integers little-endian):
//!
//! | field            | encoding                                    |
//! |------------------|---------------------------------------------|
//! | magic            | 8 bytes `\x89PNENV\r\n`                     |
//! | format version   | u16 (this code writes and reads 1)          |
//! | backend          | u8 length + UTF-8 (`trace`, `risc0`, `sp1`) |
//! | backend version  | u8 length + UTF-8                           |
//! | proof kind       | u8 length + UTF-8                           |
//! | abi              | u8 (1 = risc0, 2 = sp1)                     |
//! | program id       | 32 bytes, SHA-256 of the ELF                |
//! | input digest     | 32 bytes, SHA-256 of the input bytes        |
//! | cycles           | u64                                         |
//! | public output    | u32 length + bytes                          |
//! | proof            | u64 length + bytes (the backend's own)      |
//! | checksum         | 32 bytes, SHA-256 of every byte before it   |
//!
//! The magic's first byte is not ASCII and it holds `\r\n`, so a file mangled
//! by a text-mode transfer is caught at once. The checksum catches corruption,
//! not forgery: soundness comes from the backend's verification of `proof`
//! against the other fields.

use crate::{sha256, Abi, Digest, ProgramId};

pub const ENVELOPE_MAGIC: [u8; 8] = *b"\x89PNENV\r\n";
pub const ENVELOPE_FORMAT_VERSION: u16 = 1;

#[derive(Clone, PartialEq, Eq)]
pub struct ProofEnvelope {
    /// Registry name of the backend that made the proof.
    pub backend: String,
    /// The backend's version; each backend decides which versions it verifies.
    pub backend_version: String,
    /// The kind of proof within the backend (`execution-record`, `composite`, ...).
    pub proof_kind: String,
    pub abi: Abi,
    pub program_id: ProgramId,
    pub input_digest: Digest,
    pub cycles: u64,
    pub public_output: Vec<u8>,
    pub proof: Vec<u8>,
}

impl std::fmt::Debug for ProofEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofEnvelope")
            .field("backend", &self.backend)
            .field("backend_version", &self.backend_version)
            .field("proof_kind", &self.proof_kind)
            .field("abi", &self.abi)
            .field("program_id", &self.program_id)
            .field("input_digest", &self.input_digest)
            .field("cycles", &self.cycles)
            .field("public_output", &hex::encode(&self.public_output))
            .field("proof_len", &self.proof.len())
            .finish()
    }
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("not a provernode proof envelope (the file does not start with the envelope magic); check the path, or whether the file was altered in transfer")]
    BadMagic,
    #[error("proof envelope format version {found} is not supported by this build (it reads version {supported}); verify it with the provernode release that wrote it, or upgrade")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("proof envelope is truncated while reading {field}; the file is incomplete, fetch it again")]
    Truncated { field: &'static str },
    #[error("proof envelope checksum does not match its contents: the file is corrupt, fetch it again")]
    ChecksumMismatch,
    #[error("proof envelope field {field} is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("proof envelope has {extra} unexpected bytes after its checksum; the file is corrupt")]
    TrailingBytes { extra: usize },
    #[error("proof envelope field {field} is too long to encode ({len} bytes, at most {max})")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

impl ProofEnvelope {
    /// Encodes the envelope. Fails only when a string field is longer than
    /// 255 bytes or the public output longer than 4 GiB.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::with_capacity(200 + self.public_output.len() + self.proof.len());
        out.extend_from_slice(&ENVELOPE_MAGIC);
        out.extend_from_slice(&ENVELOPE_FORMAT_VERSION.to_le_bytes());
        put_str8(&mut out, "backend", &self.backend)?;
        put_str8(&mut out, "backend version", &self.backend_version)?;
        put_str8(&mut out, "proof kind", &self.proof_kind)?;
        out.push(self.abi.code());
        out.extend_from_slice(self.program_id.0.as_bytes());
        out.extend_from_slice(self.input_digest.as_bytes());
        out.extend_from_slice(&self.cycles.to_le_bytes());
        let output_len = u32::try_from(self.public_output.len()).map_err(|_| EnvelopeError::TooLong {
            field: "public output",
            len: self.public_output.len(),
            max: u32::MAX as usize,
        })?;
        out.extend_from_slice(&output_len.to_le_bytes());
        out.extend_from_slice(&self.public_output);
        out.extend_from_slice(&(self.proof.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.proof);
        let checksum = sha256(&out);
        out.extend_from_slice(checksum.as_bytes());
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<ProofEnvelope, EnvelopeError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(8, "magic").ok() != Some(&ENVELOPE_MAGIC[..]) {
            return Err(EnvelopeError::BadMagic);
        }
        let version = r.u16("format version")?;
        if version != ENVELOPE_FORMAT_VERSION {
            return Err(EnvelopeError::UnsupportedVersion {
                found: version,
                supported: ENVELOPE_FORMAT_VERSION,
            });
        }
        if bytes.len() < r.pos + 32 {
            return Err(EnvelopeError::Truncated { field: "checksum" });
        }
        // Check integrity before trusting any length field.
        let body_end = bytes.len() - 32;
        if sha256(&bytes[..body_end]).as_bytes()[..] != bytes[body_end..] {
            return Err(EnvelopeError::ChecksumMismatch);
        }
        let mut r = Reader {
            bytes: &bytes[..body_end],
            pos: r.pos,
        };
        let backend = r.str8("backend")?;
        let backend_version = r.str8("backend version")?;
        let proof_kind = r.str8("proof kind")?;
        let abi_code = r.u8("abi")?;
        let abi = Abi::from_code(abi_code).ok_or_else(|| EnvelopeError::InvalidField {
            field: "abi",
            reason: format!("unknown ABI code {abi_code}"),
        })?;
        let program_id = ProgramId(r.digest("program id")?);
        let input_digest = r.digest("input digest")?;
        let cycles = r.u64("cycles")?;
        let output_len = r.u32("public output length")? as usize;
        let public_output = r.take(output_len, "public output")?.to_vec();
        let proof_len = r.u64("proof length")?;
        let proof_len =
            usize::try_from(proof_len).map_err(|_| EnvelopeError::Truncated { field: "proof" })?;
        let proof = r.take(proof_len, "proof")?.to_vec();
        if r.pos != r.bytes.len() {
            return Err(EnvelopeError::TrailingBytes {
                extra: r.bytes.len() - r.pos,
            });
        }
        if backend.is_empty() {
            return Err(EnvelopeError::InvalidField {
                field: "backend",
                reason: "empty".into(),
            });
        }
        Ok(ProofEnvelope {
            backend,
            backend_version,
            proof_kind,
            abi,
            program_id,
            input_digest,
            cycles,
            public_output,
            proof,
        })
    }
}

fn put_str8(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), EnvelopeError> {
    let len = u8::try_from(s.len()).map_err(|_| EnvelopeError::TooLong {
        field,
        len: s.len(),
        max: u8::MAX as usize,
    })?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], EnvelopeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(EnvelopeError::Truncated { field })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EnvelopeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, EnvelopeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, EnvelopeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, EnvelopeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, EnvelopeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn digest(&mut self, field: &'static str) -> Result<Digest, EnvelopeError> {
        Ok(Digest(self.array(field)?))
    }

    fn str8(&mut self, field: &'static str) -> Result<String, EnvelopeError> {
        let len = self.u8(field)? as usize;
        let raw = self.take(len, field)?;
        String::from_utf8(raw.to_vec()).map_err(|_| EnvelopeError::InvalidField {
            field,
            reason: "not UTF-8".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProofEnvelope {
        ProofEnvelope {
            backend: "trace".into(),
            backend_version: "1".into(),
            proof_kind: "execution-record".into(),
            abi: Abi::Sp1,
            program_id: ProgramId(sha256(b"elf")),
            input_digest: sha256(b"input"),
            cycles: 12345,
            public_output: vec![1, 2, 3],
            proof: vec![9; 100],
        }
    }

    fn reseal(bytes: &mut [u8]) {
        let end = bytes.len() - 32;
        let sum = sha256(&bytes[..end]);
        bytes[end..].copy_from_slice(sum.as_bytes());
    }

    #[test]
    fn round_trips() {
        let env = sample();
        let bytes = env.encode().unwrap();
        assert_eq!(&bytes[..8], &ENVELOPE_MAGIC);
        assert_eq!(ProofEnvelope::decode(&bytes).unwrap(), env);
    }

    #[test]
    fn round_trips_empty_fields() {
        let mut env = sample();
        env.public_output.clear();
        env.proof.clear();
        env.backend_version.clear();
        let bytes = env.encode().unwrap();
        assert_eq!(ProofEnvelope::decode(&bytes).unwrap(), env);
    }

    #[test]
    fn rejects_a_foreign_file() {
        assert_eq!(
            ProofEnvelope::decode(b"hello world"),
            Err(EnvelopeError::BadMagic)
        );
        assert_eq!(ProofEnvelope::decode(b""), Err(EnvelopeError::BadMagic));
    }

    #[test]
    fn rejects_an_unknown_format_version_with_both_versions_named() {
        let mut bytes = sample().encode().unwrap();
        bytes[8..10].copy_from_slice(&7u16.to_le_bytes());
        let err = ProofEnvelope::decode(&bytes).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::UnsupportedVersion {
                found: 7,
                supported: 1
            }
        );
        assert!(err.to_string().contains("version 7"));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let bytes = sample().encode().unwrap();
        for i in 10..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                ProofEnvelope::decode(&bad).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn every_truncation_is_caught() {
        let bytes = sample().encode().unwrap();
        for len in 0..bytes.len() {
            assert!(
                ProofEnvelope::decode(&bytes[..len]).is_err(),
                "truncation to {len} bytes accepted"
            );
        }
    }

    #[test]
    fn a_resealed_bad_length_is_reported_as_truncation_not_a_panic() {
        let mut bytes = sample().encode().unwrap();
        // The public output length field sits after the fixed header.
        let pos = 8 + 2 + 1 + 5 + 1 + 1 + 1 + 16 + 1 + 32 + 32 + 8;
        assert_eq!(&bytes[pos..pos + 4], &3u32.to_le_bytes());
        bytes[pos..pos + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        reseal(&mut bytes);
        assert!(matches!(
            ProofEnvelope::decode(&bytes),
            Err(EnvelopeError::Truncated {
                field: "public output"
            })
        ));
    }

    #[test]
    fn an_unknown_abi_is_named() {
        let mut bytes = sample().encode().unwrap();
        let pos = 8 + 2 + 1 + 5 + 1 + 1 + 1 + 16;
        assert_eq!(bytes[pos], Abi::Sp1.code());
        bytes[pos] = 9;
        reseal(&mut bytes);
        let err = ProofEnvelope::decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("unknown ABI code 9"), "{err}");
    }

    #[test]
    fn overlong_strings_are_refused_at_encode_time() {
        let mut env = sample();
        env.backend = "x".repeat(300);
        assert!(matches!(env.encode(), Err(EnvelopeError::TooLong { .. })));
    }
}
