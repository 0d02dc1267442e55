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
//!
//! The curve arithmetic is libsecp256k1's (the C library go-ethereum uses, through the `secp256k1`
//! crate), several times faster than RustCrypto's `k256` for the signing and recovery done on every
//! streamed frame. Signing is RFC 6979 with low `s`: byte for byte go-ethereum's and `k256`'s for any
//! prehash below the group order (all but ~2^-128 of them; see the tests for the rest).

use std::sync::LazyLock;

use alloy::primitives::{eip191_hash_message, keccak256, Address, Bytes, Signature, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use rand::RngExt as _;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{All, Message, Secp256k1, SecretKey};
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

/// The libsecp256k1 context (signing and verification), blinded once with a random seed against
/// side channels.
pub(crate) static SECP256K1: LazyLock<Secp256k1<All>> = LazyLock::new(|| {
    let mut context = Secp256k1::new();
    let mut seed = [0u8; 32];
    rand::rng().fill(&mut seed[..]);
    context.seeded_randomize(&seed);
    context
});

/// A signer's private key as a libsecp256k1 secret key.
pub(crate) fn secret_key(signer: &PrivateKeySigner) -> Result<SecretKey, secp256k1::Error> {
    // A `PrivateKeySigner` holds a non-zero scalar below the group order: this cannot fail.
    SecretKey::from_byte_array(signer.credential().to_bytes().into())
}

/// Signs `keccak256(message)` the way go-ethereum's `crypto.Sign` does (v ∈ {0, 1}).
pub fn sign_go(signer: &PrivateKeySigner, message: &[u8]) -> Result<Bytes, ProtocolError> {
    let raw = sign_prehash(signer, &keccak256(message))?;
    Ok(Bytes::copy_from_slice(&raw))
}

/// `r ‖ s ‖ v` (v ∈ {0, 1}) of a 32-byte prehash: RFC 6979 without extra entropy, low `s`.
fn sign_prehash(signer: &PrivateKeySigner, prehash: &B256) -> Result<[u8; SIGNATURE_LEN], ProtocolError> {
    let secret = secret_key(signer).map_err(|e| ProtocolError::Signing { reason: e.to_string() })?;
    let (recovery_id, rs) =
        SECP256K1.sign_ecdsa_recoverable(Message::from_digest(prehash.0), &secret).serialize_compact();
    let mut raw = [0u8; SIGNATURE_LEN];
    raw[..64].copy_from_slice(&rs);
    // The parity of R.y. (Ids 2 and 3, an R.x above the group order, have probability ~2^-127;
    // 65-byte Ethereum signatures cannot express them, and `k256` drops the bit the same way.)
    raw[64] = (i32::from(recovery_id) & 1) as u8;
    Ok(raw)
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
    let mut raw = sign_prehash(signer, &eip191_hash_message(keccak256(artifact)))?;
    raw[64] += 27;
    Ok(Bytes::copy_from_slice(&raw))
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
pub fn parse_public_key(bytes: &[u8]) -> Result<secp256k1::PublicKey, ProtocolError> {
    // The prefix check comes first: libsecp256k1 alone would also take the hybrid forms 06/07.
    match (bytes.len(), bytes.first()) {
        (65, Some(0x04)) | (33, Some(0x02 | 0x03)) => secp256k1::PublicKey::from_slice(bytes)
            .map_err(|_| ProtocolError::InvalidPublicKey { reason: "not a point on secp256k1" }),
        _ => Err(ProtocolError::InvalidPublicKey {
            reason: "expected 65 bytes starting 04 or 33 bytes starting 02/03",
        }),
    }
}

/// The Ethereum address of a public key (65-byte uncompressed or 33-byte compressed).
pub fn public_key_address(bytes: &[u8]) -> Result<Address, ProtocolError> {
    Ok(address_of(&parse_public_key(bytes)?))
}

/// `keccak256(x ‖ y)[12..]`.
fn address_of(key: &secp256k1::PublicKey) -> Address {
    Address::from_raw_public_key(&key.serialize_uncompressed()[1..])
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
    recover_key_prehash(signature, prehash).map(|key| address_of(&key))
}

fn recover_key_prehash(signature: &Signature, prehash: &B256) -> Result<secp256k1::PublicKey, ProtocolError> {
    let unrecoverable = |_| ProtocolError::BadSignature { reason: "no public key recovers from it" };
    let recovery_id = if signature.v() { RecoveryId::One } else { RecoveryId::Zero };
    // Refuses r or s at or above the group order; recovery refuses zero r or s.
    let signature = RecoverableSignature::from_compact(&signature.as_bytes()[..64], recovery_id)
        .map_err(unrecoverable)?;
    SECP256K1.recover_ecdsa(Message::from_digest(prehash.0), &signature).map_err(unrecoverable)
}

/// The 65-byte uncompressed public key whose Go-style signature over `keccak256(message)` this is
/// (with [`recover_go`]'s checks).
pub fn recover_go_public_key(message: &[u8], signature: &[u8]) -> Result<Bytes, ProtocolError> {
    let signature = parse_signature(signature, 0)?;
    let key = recover_key_prehash(&signature, &keccak256(message))?;
    Ok(Bytes::copy_from_slice(&key.serialize_uncompressed()))
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

    /// The 65-byte uncompressed public key that signed the message (the reference's handshake sends it;
    /// this recovers it when only a signed message is at hand).
    fn recover_public_key(&self) -> Result<Bytes, ProtocolError> {
        recover_go_public_key(&self.signing_bytes()?, self.signature())
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
    use alloy::signers::SignerSync;

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

    /// The group order n.
    const ORDER: [u8; 32] = hex!("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");

    fn random_bytes(len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        rand::rng().fill(&mut bytes[..]);
        bytes
    }

    fn k256_signature(signer: &PrivateKeySigner, prehash: &B256) -> [u8; SIGNATURE_LEN] {
        let signature = signer.sign_hash_sync(prehash).unwrap();
        let mut raw = signature.as_bytes();
        raw[64] = u8::from(signature.v());
        raw
    }

    /// libsecp256k1's signatures are byte for byte RustCrypto's (alloy's `PrivateKeySigner`), which
    /// the vectors show are go-ethereum's: random keys and messages, and edge prehashes.
    #[test]
    fn signatures_are_byte_identical_to_k256_ones() {
        let mut rng = rand::rng();
        for _ in 0..300 {
            let signer = PrivateKeySigner::random();
            let message = random_bytes(rng.random_range(0..300));
            assert_eq!(
                sign_go(&signer, &message).unwrap().as_ref(),
                k256_signature(&signer, &keccak256(&message))
            );
            let expected = signer.sign_message_sync(keccak256(&message).as_slice()).unwrap();
            assert_eq!(sign_eip191(&signer, &message).unwrap().as_ref(), expected.as_bytes());
        }
        let signer = user();
        let below_order = (U256::from_be_bytes(ORDER) - U256::from(1u8)).to_be_bytes::<32>();
        for prehash in [[0u8; 32], [1u8; 32], below_order] {
            let prehash = B256::from(prehash);
            assert_eq!(sign_prehash(&signer, &prehash).unwrap(), k256_signature(&signer, &prehash));
        }
    }

    /// A prehash at or above n (probability ~2^-128 for a keccak output) is reduced modulo n for the
    /// RFC 6979 nonce too, as RFC 6979's `bits2octets` and libsecp256k1 (go-ethereum's cgo build) do;
    /// `k256` (like go-ethereum's pure-Go fallback) feeds it unreduced, so only there do the two
    /// differ. Both are valid signatures of the same key.
    #[test]
    fn prehashes_at_or_above_the_order_are_reduced_as_rfc_6979_says() {
        let signer = user();
        let order = U256::from_be_bytes(ORDER);
        for excess in [U256::ZERO, U256::from(1u8), U256::MAX - order] {
            let prehash = B256::from(order + excess);
            let reduced = B256::from(excess);
            let signature = sign_prehash(&signer, &prehash).unwrap();
            assert_eq!(signature, k256_signature(&signer, &reduced));
            let parsed = parse_signature(&signature, 0).unwrap();
            assert_eq!(recover_prehash(&parsed, &prehash).unwrap(), signer.address());
            assert_eq!(parsed.recover_address_from_prehash(&prehash).unwrap(), signer.address());
        }
    }

    /// Recovery accepts and refuses what RustCrypto's does, with the same address: valid signatures,
    /// random and degenerate `r`/`s` (zero, n − 1, n, above n, x not on the curve), low `s` only.
    #[test]
    fn recovery_agrees_with_k256() {
        let mut rng = rand::rng();
        let order = U256::from_be_bytes(ORDER);
        let r_specials =
            [U256::ZERO, U256::from(1u8), order - U256::from(1u8), order, order + U256::from(1u8), U256::MAX];
        // High `s` never gets here: `parse_signature` refuses it first.
        let s_specials = [U256::ZERO, U256::from(1u8), HALF_ORDER];
        let mut cases = Vec::new();
        for _ in 0..200 {
            let signer = PrivateKeySigner::random();
            let prehash = B256::from_slice(&random_bytes(32));
            let signature = signer.sign_hash_sync(&prehash).unwrap();
            cases.push((signature, prehash));
            let r = U256::from_be_slice(&random_bytes(32));
            let s = U256::from_be_slice(&random_bytes(32)) % HALF_ORDER;
            cases.push((Signature::new(r, s, rng.random()), prehash));
            let r = r_specials[rng.random_range(0..r_specials.len())];
            cases.push((Signature::new(r, signature.s(), signature.v()), prehash));
            let s = s_specials[rng.random_range(0..s_specials.len())];
            cases.push((Signature::new(signature.r(), s, signature.v()), prehash));
        }
        for (signature, prehash) in cases {
            let expected = signature.recover_address_from_prehash(&prehash).ok();
            assert_eq!(recover_prehash(&signature, &prehash).ok(), expected, "{signature:?} over {prehash}");
        }
    }

    #[test]
    fn hybrid_public_keys_are_refused() {
        let mut hybrid = uncompressed_public_key(&user()).to_vec();
        hybrid[0] = 0x06 | (hybrid[64] & 1);
        assert!(matches!(parse_public_key(&hybrid), Err(ProtocolError::InvalidPublicKey { .. })));
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

    #[test]
    fn the_public_key_of_a_signed_message_is_recovered() {
        let user = PrivateKeySigner::random();
        let prompt = crate::protocol::SessionPromptReq::build(
            &user,
            alloy::primitives::B256::repeat_byte(1),
            "{}",
            1_000,
        )
        .unwrap();
        let key = prompt.recover_public_key().unwrap();
        assert_eq!(key, uncompressed_public_key(&user));
        assert_eq!(public_key_address(&key).unwrap(), user.address());
        let mut tampered = prompt.clone();
        tampered.timestamp += 1;
        // Another message recovers another (random) key, never the user's.
        assert!(tampered
            .recover_public_key()
            .map_or(true, |k| public_key_address(&k).unwrap() != user.address()));
        let mut bad = prompt;
        bad.signature = Bytes::from(vec![0u8; 64]);
        assert!(bad.recover_public_key().is_err());
    }
}
