//! The two signature schemes of MOR-RPC.
//!
//! **Message signatures** (every MOR-RPC params object, [`Signable`]): `keccak256` of the message's
//! Go JSON with its signature field cleared ([`Signable::signing_bytes`]), signed with secp256k1 as
//! go-ethereum's `crypto.Sign` does: 65 bytes `r ‖ s ‖ v` with **v ∈ {0, 1}**, RFC 6979, low `s`.
//! No Ethereum prefix.
//!
//! **On-chain artifact signatures** (the session approval and report, [`sign_eip191`]): EIP-191
//! `keccak256("\x19Ethereum Signed Message:\n32" ‖ keccak256(artifact))` with **v ∈ {27, 28}**, which is
//! what the SessionRouter recovers with OpenZeppelin's `ECDSA`.
//!
//! Verification is strict in ways that never reject a Go peer: the signature must be exactly 65 bytes,
//! `v` must be the scheme's (Go signers always produce it), and `s` must be in the lower half of the
//! curve order (go-ethereum's `VerifySignature` and OpenZeppelin both refuse high `s`). That removes
//! the malleable twin of every signature, which the replay cache relies on.

use alloy::primitives::{eip191_hash_message, keccak256, Address, Bytes, Signature, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use serde::Serialize;

use super::error::ProtocolError;
use super::gojson::to_go_json;

/// Length of every signature on the wire: `r ‖ s ‖ v`.
pub const SIGNATURE_LEN: usize = 65;

/// Half the secp256k1 group order: the largest accepted `s`.
const HALF_ORDER: U256 = U256::from_be_bytes([
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d,
    0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

/// Signs `keccak256(message)` the way go-ethereum's `crypto.Sign` does (v ∈ {0, 1}).
pub fn sign_go(signer: &PrivateKeySigner, message: &[u8]) -> Result<Bytes, ProtocolError> {
    let signature = signer
        .sign_hash_sync(&keccak256(message))
        .map_err(|e| ProtocolError::Signing { reason: e.to_string() })?;
    let mut raw = signature.as_bytes();
    raw[64] = u8::from(signature.v());
    Ok(Bytes::copy_from_slice(&raw))
}

/// The address whose key produced a Go-style signature over `keccak256(message)`.
pub fn recover_go(message: &[u8], signature: &[u8]) -> Result<Address, ProtocolError> {
    let signature = parse_signature(signature, 0)?;
    recover_prehash(&signature, &keccak256(message))
}

/// Checks that a Go-style signature over `keccak256(message)` comes from `expected`.
pub fn verify_go(message: &[u8], signature: &[u8], expected: Address) -> Result<(), ProtocolError> {
    let actual = recover_go(message, signature)?;
    if actual == expected {
        Ok(())
    } else {
        Err(ProtocolError::WrongSigner { expected, actual })
    }
}

/// Checks a Go-style signature against a public key (65-byte uncompressed or 33-byte compressed), as
/// the reference's `VerifySignature` does; returns the key's address.
pub fn verify_go_pubkey(
    message: &[u8],
    signature: &[u8],
    public_key: &[u8],
) -> Result<Address, ProtocolError> {
    let expected = public_key_address(public_key)?;
    verify_go(message, signature, expected)?;
    Ok(expected)
}

/// EIP-191 signature of `keccak256(artifact)` (v ∈ {27, 28}), as the reference's `SignEthMessageV2`
/// signs approvals and reports.
pub fn sign_eip191(signer: &PrivateKeySigner, artifact: &[u8]) -> Result<Bytes, ProtocolError> {
    let signature = signer
        .sign_message_sync(keccak256(artifact).as_slice())
        .map_err(|e| ProtocolError::Signing { reason: e.to_string() })?;
    Ok(Bytes::copy_from_slice(&signature.as_bytes()))
}

/// The address that signed `artifact` with [`sign_eip191`]'s scheme, checked as OpenZeppelin's
/// `ECDSA.recover` does (65 bytes, v ∈ {27, 28}, low `s`).
pub fn recover_eip191(artifact: &[u8], signature: &[u8]) -> Result<Address, ProtocolError> {
    let signature = parse_signature(signature, 27)?;
    recover_prehash(&signature, &eip191_hash_message(keccak256(artifact)))
}

/// The 65-byte uncompressed public key (`04 ‖ x ‖ y`) of a signer, as sent in `session.request.key`
/// and `SessionRes.message`.
pub fn uncompressed_public_key(signer: &PrivateKeySigner) -> Bytes {
    let point = signer.credential().verifying_key().to_encoded_point(false);
    Bytes::copy_from_slice(point.as_bytes())
}

/// Parses a secp256k1 public key: 65-byte uncompressed or 33-byte compressed SEC1.
pub fn parse_public_key(bytes: &[u8]) -> Result<k256::PublicKey, ProtocolError> {
    match (bytes.len(), bytes.first()) {
        (65, Some(0x04)) | (33, Some(0x02 | 0x03)) => k256::PublicKey::from_sec1_bytes(bytes)
            .map_err(|_| ProtocolError::InvalidPublicKey { reason: "not a point on secp256k1" }),
        _ => Err(ProtocolError::InvalidPublicKey {
            reason: "expected 65 bytes starting 04 or 33 bytes starting 02/03",
        }),
    }
}

/// The Ethereum address of a public key (65-byte uncompressed or 33-byte compressed).
pub fn public_key_address(bytes: &[u8]) -> Result<Address, ProtocolError> {
    let key = parse_public_key(bytes)?;
    Ok(Address::from_public_key(&k256::ecdsa::VerifyingKey::from(key)))
}

/// Parses `r ‖ s ‖ v` with `v ∈ {v_base, v_base + 1}` and low `s`.
fn parse_signature(bytes: &[u8], v_base: u8) -> Result<Signature, ProtocolError> {
    if bytes.len() != SIGNATURE_LEN {
        return Err(ProtocolError::BadSignature { reason: "expected 65 bytes r ‖ s ‖ v" });
    }
    let parity = match bytes[64].checked_sub(v_base) {
        Some(0) => false,
        Some(1) => true,
        _ if v_base == 0 => return Err(ProtocolError::BadSignature { reason: "v must be 0 or 1" }),
        _ => return Err(ProtocolError::BadSignature { reason: "v must be 27 or 28" }),
    };
    let signature = Signature::from_bytes_and_parity(&bytes[..64], parity);
    if signature.s() > HALF_ORDER {
        return Err(ProtocolError::BadSignature { reason: "s is in the upper half of the curve order" });
    }
    Ok(signature)
}

fn recover_prehash(signature: &Signature, prehash: &B256) -> Result<Address, ProtocolError> {
    signature
        .recover_address_from_prehash(prehash)
        .map_err(|_| ProtocolError::BadSignature { reason: "no public key recovers from it" })
}

/// A MOR-RPC params object that carries its own Go-style signature.
///
/// The signed bytes are the message's Go JSON with the signature cleared: for most messages the
/// `signature` key is then absent (`omitempty`); for `PingReq`, `PongRes` and `RpcError` it stays as
/// `"signature":"0x"`. Both follow from the field's serde attributes, so no message needs special code.
pub trait Signable: Serialize + Clone {
    /// Name used in errors, e.g. `session.prompt params`.
    const WHAT: &'static str;

    /// The signature as received or as set by [`Signable::sign`] (empty when unsigned).
    fn signature(&self) -> &Bytes;

    /// Mutable access to the signature field.
    fn signature_mut(&mut self) -> &mut Bytes;

    /// The exact bytes the signature covers.
    fn signing_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut unsigned = self.clone();
        *unsigned.signature_mut() = Bytes::new();
        to_go_json(&unsigned, Self::WHAT)
    }

    /// `keccak256` of [`Signable::signing_bytes`].
    fn signing_hash(&self) -> Result<B256, ProtocolError> {
        Ok(keccak256(self.signing_bytes()?))
    }

    /// Signs the message in place with `signer`.
    fn sign(&mut self, signer: &PrivateKeySigner) -> Result<(), ProtocolError> {
        let signature = sign_go(signer, &self.signing_bytes()?)?;
        *self.signature_mut() = signature;
        Ok(())
    }

    /// Returns the message signed by `signer`.
    fn signed(mut self, signer: &PrivateKeySigner) -> Result<Self, ProtocolError> {
        self.sign(signer)?;
        Ok(self)
    }

    /// The address that signed the message.
    fn recover_signer(&self) -> Result<Address, ProtocolError> {
        recover_go(&self.signing_bytes()?, self.signature())
    }

    /// Checks that the message was signed by `expected`.
    fn verify_signer(&self, expected: Address) -> Result<(), ProtocolError> {
        verify_go(&self.signing_bytes()?, self.signature(), expected)
    }

    /// Checks that the message was signed by the holder of `public_key` (as the reference verifies
    /// against the key stored at the handshake); returns the key's address.
    fn verify_public_key(&self, public_key: &[u8]) -> Result<Address, ProtocolError> {
        verify_go_pubkey(&self.signing_bytes()?, self.signature(), public_key)
    }
}

/// A message that carries the sender's clock (Unix milliseconds), for the replay defences.
pub trait Timestamped {
    /// The message's `timestamp` in Unix milliseconds.
    fn timestamp_ms(&self) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, hex};

    pub(crate) fn user() -> PrivateKeySigner {
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a".parse().unwrap()
    }

    #[test]
    fn go_signatures_have_v_0_or_1_and_recover() {
        let signer = user();
        for message in [&b"a"[..], b"b", b"c", b"d", b"e", b"f"] {
            let sig = sign_go(&signer, message).unwrap();
            assert_eq!(sig.len(), 65);
            assert!(sig[64] <= 1);
            assert_eq!(recover_go(message, &sig).unwrap(), signer.address());
        }
    }

    #[test]
    fn v_27_is_refused_for_message_signatures_and_v_0_for_eip191() {
        let signer = user();
        let mut sig = sign_go(&signer, b"x").unwrap().to_vec();
        sig[64] += 27;
        assert!(matches!(recover_go(b"x", &sig), Err(ProtocolError::BadSignature { .. })));

        let mut sig = sign_eip191(&signer, b"x").unwrap().to_vec();
        assert!(sig[64] == 27 || sig[64] == 28);
        assert_eq!(recover_eip191(b"x", &sig).unwrap(), signer.address());
        sig[64] -= 27;
        assert!(matches!(recover_eip191(b"x", &sig), Err(ProtocolError::BadSignature { .. })));
    }

    #[test]
    fn high_s_twin_is_refused() {
        let signer = user();
        let sig = sign_go(&signer, b"x").unwrap();
        let parsed = Signature::from_bytes_and_parity(&sig[..64], sig[64] == 1);
        let order =
            U256::from_be_bytes(hex!("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"));
        let twin = Signature::new(parsed.r(), order - parsed.s(), !parsed.v());
        let mut raw = twin.as_bytes();
        raw[64] = u8::from(twin.v());
        // alloy alone would accept the twin; we do not.
        assert_eq!(twin.recover_address_from_prehash(&keccak256(b"x")).unwrap(), signer.address());
        assert!(matches!(recover_go(b"x", &raw), Err(ProtocolError::BadSignature { .. })));
    }

    #[test]
    fn wrong_length_and_garbage_are_bad_signatures() {
        assert!(matches!(recover_go(b"x", &[0u8; 64]), Err(ProtocolError::BadSignature { .. })));
        assert!(matches!(recover_go(b"x", &[0u8; 65]), Err(ProtocolError::BadSignature { .. })));
    }

    #[test]
    fn public_keys_of_both_forms_give_the_address() {
        let signer = user();
        let uncompressed = uncompressed_public_key(&signer);
        assert_eq!(uncompressed.len(), 65);
        assert_eq!(
            public_key_address(&uncompressed).unwrap(),
            address!("3c44cdddb6a900fa2b585dd299e03d12fa4293bc")
        );
        let compressed = signer.credential().verifying_key().to_encoded_point(true);
        assert_eq!(public_key_address(compressed.as_bytes()).unwrap(), signer.address());
        assert!(matches!(
            public_key_address(&uncompressed[1..]),
            Err(ProtocolError::InvalidPublicKey { .. })
        ));
        let mut off_curve = uncompressed.to_vec();
        off_curve[64] ^= 1;
        assert!(matches!(public_key_address(&off_curve), Err(ProtocolError::InvalidPublicKey { .. })));
    }

    #[test]
    fn verify_against_a_public_key() {
        let signer = user();
        let sig = sign_go(&signer, b"msg").unwrap();
        let key = uncompressed_public_key(&signer);
        assert_eq!(verify_go_pubkey(b"msg", &sig, &key).unwrap(), signer.address());
        let other = PrivateKeySigner::random();
        let err = verify_go_pubkey(b"msg", &sig, &uncompressed_public_key(&other)).unwrap_err();
        assert!(
            matches!(err, ProtocolError::WrongSigner { expected, actual } if expected == other.address() && actual == signer.address())
        );
    }
}
