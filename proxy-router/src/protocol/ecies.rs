//! ECIES as go-ethereum's `crypto/ecies` does it for secp256k1 (`ECIES_AES128_SHA256`), which the
//! reference uses to encrypt every provider→consumer payload to the consumer's wallet public key.
//!
//! Only the glue is written here; the primitives are libsecp256k1's for the curve (the `secp256k1`
//! crate: the ephemeral key, `R = r·G` and the ECDH point, all once per frame) and RustCrypto's for the
//! rest (`aes` + `ctr`, `sha2`, `hmac`):
//!
//! 1. a fresh ephemeral key `r`, `R = r·G`; shared secret `z` = x coordinate of `r·Pub` (32 bytes);
//! 2. `K = concatKDF_SHA256(z, s1 = ∅, 32)`: `SHA256(00000001 ‖ z)` (one block suffices);
//! 3. `Ke = K[0..16]`, `Km = SHA256(K[16..32])` (go-ethereum hashes the MAC key);
//! 4. `em = IV ‖ AES-128-CTR(Ke, IV, m)` with a random 16-byte IV (128-bit big-endian counter);
//! 5. `tag = HMAC-SHA256(Km, em ‖ s2 = ∅)`;
//! 6. ciphertext = `04 ‖ R.x ‖ R.y` (65 bytes) ‖ `em` ‖ `tag` (32 bytes).
//!
//! This is not the `ecies` crate's format (HKDF + AES-GCM). On the wire the ciphertext travels as
//! lower-case hex without `0x` ([`encrypt_hex`]); [`decrypt_hex`] accepts it with or without `0x`.

use aes::cipher::{KeyIvInit, StreamCipher};
use alloy::signers::local::PrivateKeySigner;
use hmac::{KeyInit as _, Mac as _};
use rand::RngExt as _;
use secp256k1::{ecdh, PublicKey, SecretKey};
use sha2::{Digest as _, Sha256};

use super::error::ProtocolError;
use super::signing::{parse_public_key, secret_key, SECP256K1};

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type HmacSha256 = hmac::Hmac<Sha256>;

/// Length of the uncompressed ephemeral public key at the start of a ciphertext.
const EPHEMERAL_LEN: usize = 65;
/// AES block size: the IV length.
const IV_LEN: usize = 16;
/// HMAC-SHA256 tag length.
const TAG_LEN: usize = 32;
/// The smallest valid ciphertext (an empty plaintext).
pub const MIN_CIPHERTEXT_LEN: usize = EPHEMERAL_LEN + IV_LEN + TAG_LEN;

/// Encrypts `plaintext` to `recipient_public_key` (65-byte uncompressed or 33-byte compressed).
pub fn encrypt(recipient_public_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let recipient = parse_public_key(recipient_public_key)?;
    let mut rng = rand::rng();
    let ephemeral = loop {
        let mut candidate = [0u8; 32];
        rng.fill(&mut candidate[..]);
        // Fails only for zero or a value above the group order (probability ~2^-128).
        if let Ok(key) = SecretKey::from_byte_array(candidate) {
            break key;
        }
    };
    let mut iv = [0u8; IV_LEN];
    rng.fill(&mut iv[..]);
    encrypt_with(&recipient, &ephemeral, iv, plaintext)
}

/// [`encrypt`], hex-encoded as the reference puts it into `message` (lower case, no `0x`).
pub fn encrypt_hex(recipient_public_key: &[u8], plaintext: &[u8]) -> Result<String, ProtocolError> {
    encrypt(recipient_public_key, plaintext).map(hex::encode)
}

/// Encryption with a given ephemeral key and IV: deterministic, for the test vectors.
pub(crate) fn encrypt_with(
    recipient: &PublicKey,
    ephemeral: &SecretKey,
    iv: [u8; IV_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    let (ke, km) = derive_keys(&shared_x(recipient, ephemeral));

    let mut out = Vec::with_capacity(MIN_CIPHERTEXT_LEN + plaintext.len());
    out.extend_from_slice(&PublicKey::from_secret_key(&SECP256K1, ephemeral).serialize_uncompressed());
    out.extend_from_slice(&iv);
    let body_start = out.len();
    out.extend_from_slice(plaintext);
    Aes128Ctr::new(&ke.into(), &iv.into()).apply_keystream(&mut out[body_start..]);
    let tag = mac(&km, &out[EPHEMERAL_LEN..])?.finalize().into_bytes();
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypts a ciphertext addressed to `recipient`'s public key.
pub fn decrypt(recipient: &PrivateKeySigner, ciphertext: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    if ciphertext.len() < MIN_CIPHERTEXT_LEN {
        return Err(ProtocolError::Decrypt { reason: "ciphertext shorter than key, IV and tag" });
    }
    if ciphertext[0] != 0x04 {
        return Err(ProtocolError::Decrypt { reason: "ephemeral key is not an uncompressed point" });
    }
    let ephemeral = PublicKey::from_slice(&ciphertext[..EPHEMERAL_LEN])
        .map_err(|_| ProtocolError::Decrypt { reason: "ephemeral key is not on secp256k1" })?;
    let secret = secret_key(recipient)
        .map_err(|_| ProtocolError::Decrypt { reason: "recipient key is not a secp256k1 secret key" })?;
    let (ke, km) = derive_keys(&shared_x(&ephemeral, &secret));

    let (em, tag) = ciphertext[EPHEMERAL_LEN..].split_at(ciphertext.len() - EPHEMERAL_LEN - TAG_LEN);
    mac(&km, em)?.verify_slice(tag).map_err(|_| ProtocolError::Decrypt { reason: "MAC mismatch" })?;

    let (iv, body) = em.split_at(IV_LEN);
    let mut plaintext = body.to_vec();
    let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| ProtocolError::Decrypt { reason: "IV length" })?;
    Aes128Ctr::new(&ke.into(), &iv.into()).apply_keystream(&mut plaintext);
    Ok(plaintext)
}

/// Decrypts the hex form used on the wire (with or without `0x`).
pub fn decrypt_hex(recipient: &PrivateKeySigner, ciphertext_hex: &str) -> Result<Vec<u8>, ProtocolError> {
    let digits = ciphertext_hex
        .strip_prefix("0x")
        .or_else(|| ciphertext_hex.strip_prefix("0X"))
        .unwrap_or(ciphertext_hex);
    let ciphertext =
        hex::decode(digits).map_err(|_| ProtocolError::Decrypt { reason: "ciphertext is not hex" })?;
    decrypt(recipient, &ciphertext)
}

/// The ECDH shared secret as go-ethereum takes it: the x coordinate of `scalar·point`, unhashed.
fn shared_x(point: &PublicKey, scalar: &SecretKey) -> [u8; 32] {
    let xy = ecdh::shared_secret_point(point, scalar);
    let mut x = [0u8; 32];
    x.copy_from_slice(&xy[..32]);
    x
}

/// NIST SP 800-56 concatenation KDF with SHA-256 for 32 bytes (a single block, counter 1, no shared
/// info), split into the AES key and the hashed MAC key.
fn derive_keys(z: &[u8]) -> ([u8; 16], [u8; 32]) {
    let k: [u8; 32] = Sha256::new().chain_update(1u32.to_be_bytes()).chain_update(z).finalize().into();
    let mut ke = [0u8; 16];
    ke.copy_from_slice(&k[..16]);
    let km: [u8; 32] = Sha256::digest(&k[16..]).into();
    (ke, km)
}

fn mac(km: &[u8; 32], em: &[u8]) -> Result<HmacSha256, ProtocolError> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac =
        HmacSha256::new_from_slice(km).map_err(|_| ProtocolError::Decrypt { reason: "MAC key length" })?;
    mac.update(em);
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::signing::uncompressed_public_key;

    #[test]
    fn round_trip_and_random_ephemeral_keys() {
        let recipient = PrivateKeySigner::random();
        let public = uncompressed_public_key(&recipient);
        for plaintext in [&b""[..], b"x", &[7u8; 1000][..]] {
            let a = encrypt(&public, plaintext).unwrap();
            let b = encrypt(&public, plaintext).unwrap();
            assert_ne!(a, b);
            assert_eq!(a.len(), MIN_CIPHERTEXT_LEN + plaintext.len());
            assert_eq!(decrypt(&recipient, &a).unwrap(), plaintext);
            assert_eq!(decrypt_hex(&recipient, &format!("0x{}", hex::encode(&b))).unwrap(), plaintext);
        }
    }

    /// libsecp256k1's shared x coordinate is RustCrypto's raw ECDH secret, for random key pairs.
    #[test]
    fn shared_secret_is_k256_raw_ecdh() {
        for _ in 0..50 {
            let (a, b) = (PrivateKeySigner::random(), PrivateKeySigner::random());
            let b_public = parse_public_key(&uncompressed_public_key(&b)).unwrap();
            let expected = k256::ecdh::diffie_hellman(
                a.credential().as_nonzero_scalar(),
                b.credential().verifying_key().as_affine(),
            );
            let actual = shared_x(&b_public, &secret_key(&a).unwrap());
            assert_eq!(actual[..], expected.raw_secret_bytes()[..]);
        }
    }

    #[test]
    fn compressed_recipient_keys_work_too() {
        let recipient = PrivateKeySigner::random();
        let compressed = recipient.credential().verifying_key().to_encoded_point(true);
        let ciphertext = encrypt(compressed.as_bytes(), b"hello").unwrap();
        assert_eq!(decrypt(&recipient, &ciphertext).unwrap(), b"hello");
    }

    #[test]
    fn any_changed_byte_fails_the_mac_or_the_key() {
        let recipient = PrivateKeySigner::random();
        let ciphertext = encrypt(&uncompressed_public_key(&recipient), b"secret payload").unwrap();
        for i in 0..ciphertext.len() {
            let mut tampered = ciphertext.clone();
            tampered[i] ^= 0x01;
            assert!(matches!(decrypt(&recipient, &tampered), Err(ProtocolError::Decrypt { .. })), "byte {i}");
        }
    }

    #[test]
    fn wrong_key_short_input_and_bad_hex_fail() {
        let recipient = PrivateKeySigner::random();
        let ciphertext = encrypt(&uncompressed_public_key(&recipient), b"x").unwrap();
        let other = PrivateKeySigner::random();
        assert!(matches!(
            decrypt(&other, &ciphertext),
            Err(ProtocolError::Decrypt { reason: "MAC mismatch" })
        ));
        assert!(matches!(
            decrypt(&recipient, &ciphertext[..MIN_CIPHERTEXT_LEN - 1]),
            Err(ProtocolError::Decrypt { .. })
        ));
        assert!(matches!(decrypt_hex(&recipient, "zz"), Err(ProtocolError::Decrypt { .. })));
    }
}
