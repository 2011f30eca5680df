//! An aggregate's input on trace: the inner proofs checked by trace itself,
//! turned into the guest's input (the claims) and what its host vouches for
//! when the guest makes the zkVM's verify call.
//!
//! A claim's program key is what the zkVM knows the program by: RISC Zero's
//! image id (risc0-binfmt computes it, so it is the id risc0 proves
//! against). SP1's vk digest needs SP1's prover set-up, which trace cannot
//! run: for the SP1 ABI trace uses a stand-in, the program id's eight
//! little-endian words each reduced modulo KoalaBear's prime, so an SP1
//! aggregate on trace commits other keys than one on `sp1` (its roots
//! differ; the shape and every output digest are the same).

use provernode_core::aggregate::{self, AggregateInput, Claim};
use provernode_core::{input, Abi, Backend, BackendError, Program, ProgramId};

pub use crate::abi::{sp1_hash_deferred_proof, Sp1DeferredProof};
pub use crate::risc0_claims::receipt_claim_ok;

use crate::abi::Deferred;
use crate::record::Record;
use crate::{risc0_claims, TraceBackend, BACKEND_NAME};

/// KoalaBear's prime, 2^31 - 2^24 + 1.
const KOALABEAR_P: u32 = 0x7f00_0001;

/// The 32-byte key a claim names `program` by (see the module comment).
pub fn program_key(program: &Program) -> Result<[u8; 32], String> {
    match program.abi() {
        Abi::Risc0 => {
            program.check_r0bf_kernel()?;
            let blob = if program.elf().starts_with(b"R0BF") {
                program.elf().to_vec()
            } else {
                risc0_binfmt::ProgramBinary::new(program.elf(), risc0_zkos_v1compat::V1COMPAT_ELF).encode()
            };
            let id = risc0_binfmt::compute_image_id(&blob).map_err(|e| format!("its image id: {e}"))?;
            let mut key = [0u8; 32];
            key.copy_from_slice(id.as_bytes());
            Ok(key)
        }
        Abi::Sp1 => Ok(sp1_stand_in_key(program.id())),
    }
}

fn sp1_stand_in_key(id: ProgramId) -> [u8; 32] {
    let mut key = [0u8; 32];
    for (out, word) in key.chunks_exact_mut(4).zip(id.0.as_bytes().chunks_exact(4)) {
        let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]) % KOALABEAR_P;
        out.copy_from_slice(&w.to_le_bytes());
    }
    key
}

/// The guest input and the host's checked proofs for an aggregate input.
pub(crate) fn prepare(
    backend: &TraceBackend,
    program: &Program,
    bytes: &[u8],
) -> Result<(Vec<u8>, Deferred), BackendError> {
    let refuse = |reason: String| BackendError::MalformedInput {
        program: program.name().to_owned(),
        reason,
    };
    let input = AggregateInput::decode(bytes).map_err(|e| refuse(e.to_string()))?;
    let mut claims = Vec::with_capacity(input.inner.len());
    let mut deferred = Deferred::default();
    for (index, envelope) in input.inner.iter().enumerate() {
        let claim_error = |reason: String| refuse(format!("claim {index}: {reason}"));
        if envelope.backend != BACKEND_NAME {
            return Err(claim_error(format!(
                "its proof was made by backend `{}`; an aggregate on `{BACKEND_NAME}` verifies `{BACKEND_NAME}` proofs (prove the claim on `{BACKEND_NAME}`, or aggregate on `{}`)",
                envelope.backend, envelope.backend
            )));
        }
        if envelope.abi != program.abi() {
            return Err(claim_error(format!(
                "its program is a {} program; this aggregate runs on {} and verifies {} proofs only",
                envelope.abi,
                program.abi(),
                program.abi()
            )));
        }
        backend
            .verify(envelope)
            .map_err(|e| claim_error(format!("its proof does not verify: {e}")))?;
        let record = Record::decode(&envelope.proof).map_err(claim_error)?;
        let inner = Program::from_elf(format!("claim {index}"), record.elf)
            .map_err(|e| claim_error(e.to_string()))?;
        let key = program_key(&inner).map_err(claim_error)?;
        match program.abi() {
            Abi::Risc0 => deferred
                .risc0_receipts
                .push(risc0_claims::receipt_claim_ok(&key, &envelope.public_output)),
            Abi::Sp1 => {
                let mut vk_digest = [0u32; 8];
                for (w, c) in vk_digest.iter_mut().zip(key.chunks_exact(4)) {
                    *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
                deferred.sp1_proofs.push(Sp1DeferredProof {
                    vk_digest,
                    pv_digest: provernode_core::sha256(&envelope.public_output).0,
                });
            }
        }
        claims.push(Claim {
            program_key: key,
            public_output: envelope.public_output.clone(),
        });
    }
    let claims = aggregate::encode_claims(&claims);
    let guest_input = match program.abi() {
        Abi::Risc0 => claims,
        Abi::Sp1 => input::encode_items(&[claims]),
    };
    Ok((guest_input, deferred))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sp1_stand_in_key_is_canonical_koalabear_words() {
        let key = sp1_stand_in_key(ProgramId(provernode_core::Digest([0xff; 32])));
        for w in key.chunks_exact(4) {
            assert!(u32::from_le_bytes([w[0], w[1], w[2], w[3]]) < KOALABEAR_P);
        }
    }
}
