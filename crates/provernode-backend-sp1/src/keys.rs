//! SP1's saved program keys: the verifying key that SP1's set-up makes
//! (15-28 s a program on 2 cores), kept in the node's artifact store so
//! that a new worker loads it in milliseconds instead.
//!
//! Bytes: `PNSP1KEY`, u16 format, u16 length + SP1's circuit version, the
//! 32-byte program id, then the bincode `SP1VerifyingKey`. The version and
//! the program are checked before the key is decoded: keys made by another
//! SP1 version, or for another program, are refused and made again, never
//! used. The artifact's name carries the version too, so a node upgraded
//! to another SP1 never even reads the old keys.
//!
//! Not behind `prove`: the framing is plain bytes, and the workspace tests
//! cover it.

use provernode_core::{KeysRefused, ProgramId};

use crate::BACKEND_NAME;

const KEYS_MAGIC: [u8; 8] = *b"PNSP1KEY";
const KEYS_FORMAT: u16 = 1;

/// The artifact name of `program`'s keys made by SP1 `version`.
pub fn artifact_name(program: &ProgramId, version: &str) -> String {
    let version: String = version
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("keys/{BACKEND_NAME}/{program}-{version}")
}

/// Frames the serialised verifying key `vk` of `program`, made by SP1
/// `version`.
pub fn encode(version: &str, program: &ProgramId, vk: &[u8]) -> Vec<u8> {
    let version = version.as_bytes();
    let version_len = u16::try_from(version.len()).unwrap_or(u16::MAX);
    let version = &version[..usize::from(version_len)];
    let mut out = Vec::with_capacity(8 + 2 + 2 + version.len() + 32 + vk.len());
    out.extend_from_slice(&KEYS_MAGIC);
    out.extend_from_slice(&KEYS_FORMAT.to_le_bytes());
    out.extend_from_slice(&version_len.to_le_bytes());
    out.extend_from_slice(version);
    out.extend_from_slice(program.0.as_bytes());
    out.extend_from_slice(vk);
    out
}

/// The serialised verifying key in `bytes`, if they are keys of `program`
/// made by SP1 `version`.
pub fn decode<'a>(bytes: &'a [u8], version: &str, program: &ProgramId) -> Result<&'a [u8], KeysRefused> {
    let refused = |why: String| KeysRefused(why);
    let rest = bytes
        .strip_prefix(&KEYS_MAGIC[..])
        .ok_or_else(|| refused("they are not provernode's SP1 keys (wrong magic)".into()))?;
    let (format, rest) = take_u16(rest).ok_or_else(|| refused("they are truncated".into()))?;
    if format != KEYS_FORMAT {
        return Err(refused(format!(
            "their format is {format}, this build reads format {KEYS_FORMAT}"
        )));
    }
    let (len, rest) = take_u16(rest).ok_or_else(|| refused("they are truncated".into()))?;
    let len = usize::from(len);
    if rest.len() < len + 32 {
        return Err(refused("they are truncated".into()));
    }
    let (made_by, rest) = rest.split_at(len);
    let made_by = String::from_utf8_lossy(made_by);
    if made_by != version {
        return Err(refused(format!(
            "they were made by SP1 {made_by}, and this build proves with SP1 {version}"
        )));
    }
    let (id, vk) = rest.split_at(32);
    if id != program.0.as_bytes() {
        return Err(refused(format!(
            "they are the keys of program {}, not of {program}",
            hex::encode(id)
        )));
    }
    if vk.is_empty() {
        return Err(refused("they hold no verifying key".into()));
    }
    Ok(vk)
}

fn take_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<2>()?;
    Some((u16::from_le_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests panic by design
    use super::*;

    fn id(byte: u8) -> ProgramId {
        ProgramId(provernode_core::Digest([byte; 32]))
    }

    #[test]
    fn keys_round_trip_for_their_program_and_version() {
        let bytes = encode("v6.1.0", &id(1), b"the vk");
        assert_eq!(decode(&bytes, "v6.1.0", &id(1)).unwrap(), b"the vk");
    }

    #[test]
    fn keys_of_another_version_or_program_or_damaged_are_refused_with_why() {
        let bytes = encode("v6.1.0", &id(1), b"the vk");
        let why = decode(&bytes, "v6.2.0", &id(1)).unwrap_err().to_string();
        assert!(why.contains("SP1 v6.1.0") && why.contains("SP1 v6.2.0"), "{why}");
        let why = decode(&bytes, "v6.1.0", &id(2)).unwrap_err().to_string();
        assert!(
            why.contains(&id(1).to_string()) && why.contains(&id(2).to_string()),
            "{why}"
        );
        for cut in [0, 5, 9, 11, 20, bytes.len() - 6] {
            assert!(decode(&bytes[..cut], "v6.1.0", &id(1)).is_err(), "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[0] ^= 1;
        assert!(decode(&other, "v6.1.0", &id(1)).unwrap_err().0.contains("magic"));
        let mut other = bytes;
        other[8] = 9;
        assert!(decode(&other, "v6.1.0", &id(1)).unwrap_err().0.contains("format"));
    }

    #[test]
    fn the_artifact_name_carries_the_program_and_a_clean_version() {
        let name = artifact_name(&id(0xab), "v6.1.0\n");
        assert_eq!(name, format!("keys/sp1/{}-v6.1.0", "ab".repeat(32)));
        assert_eq!(
            artifact_name(&id(0xab), "v 6/1"),
            format!("keys/sp1/{}-v_6_1", "ab".repeat(32))
        );
    }
}
