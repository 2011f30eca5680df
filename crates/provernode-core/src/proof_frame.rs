//! The frame real zkVM backends put around their proof bytes: 8-byte magic,
//! u16 version, u32 length + the guest ELF, then the zkVM's own proof. The
//! ELF travels with the proof so that a verifier holding only the envelope
//! can recompute what the zkVM binds the proof to (image id, verifying key).

use crate::VerifyError;

/// Frames `payload` with `magic`, `version` and `elf`.
pub fn encode(magic: &[u8; 8], version: u16, elf: &[u8], payload: &[u8]) -> Result<Vec<u8>, String> {
    let elf_len = u32::try_from(elf.len()).map_err(|_| "the ELF is larger than 4 GiB".to_owned())?;
    let mut out = Vec::with_capacity(14 + elf.len() + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&elf_len.to_le_bytes());
    out.extend_from_slice(elf);
    out.extend_from_slice(payload);
    Ok(out)
}

/// The program ELF inside any backend's proof bytes, without checking the
/// magic: every backend's proof starts with this frame's header (trace's
/// execution record has the same layout: magic, u16 version, u32 + ELF).
/// The caller checks the ELF against the envelope's program id.
pub fn elf_of_any(bytes: &[u8]) -> Option<&[u8]> {
    let len = bytes
        .get(10..14)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)?;
    bytes.get(14..14usize.checked_add(len)?)
}

/// The ELF and the payload of a frame made by [`encode`]; `backend` names
/// the backend in errors.
pub fn decode<'a>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    version: u16,
    backend: &str,
) -> Result<(&'a [u8], &'a [u8]), VerifyError> {
    let bad = |reason: String| VerifyError::MalformedProof { reason };
    if bytes.get(..8) != Some(&magic[..]) {
        return Err(bad(format!("not a {backend} proof (bad magic)")));
    }
    let found = bytes.get(8..10).map(|b| u16::from_le_bytes([b[0], b[1]]));
    if found != Some(version) {
        return Err(bad(format!(
            "unsupported {backend} proof version {found:?} (this build reads version {version})"
        )));
    }
    let len = bytes
        .get(10..14)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| bad(format!("truncated {backend} proof")))?;
    let end = 14usize.saturating_add(len);
    let elf = bytes
        .get(14..end)
        .ok_or_else(|| bad(format!("truncated ELF in the {backend} proof")))?;
    Ok((elf, &bytes[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: [u8; 8] = *b"PNTEST\0\0";

    #[test]
    fn a_frame_round_trips_and_damage_is_named() {
        let framed = encode(&MAGIC, 1, b"elf", b"proof").unwrap();
        assert_eq!(
            decode(&framed, &MAGIC, 1, "test").unwrap(),
            (&b"elf"[..], &b"proof"[..])
        );
        let reason = |r: Result<(&[u8], &[u8]), VerifyError>| match r {
            Err(VerifyError::MalformedProof { reason }) => reason,
            other => panic!("expected a malformed proof, got {other:?}"),
        };
        assert!(reason(decode(&framed, b"PNOTHER\0", 1, "test")).contains("not a test proof"));
        assert!(reason(decode(&framed, &MAGIC, 2, "test")).contains("version"));
        assert!(reason(decode(&framed[..12], &MAGIC, 1, "test")).contains("truncated test proof"));
        assert!(reason(decode(&framed[..15], &MAGIC, 1, "test")).contains("truncated ELF"));
        let mut huge = framed.clone();
        huge[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(reason(decode(&huge, &MAGIC, 1, "test")).contains("truncated ELF"));
    }
}
