//! ECIES as go-ethereum's `crypto/ecies` does it for secp256k1 (`ECIES_AES128_SHA256`), which the
//! reference uses to encrypt every provider→consumer payload to the consumer's wallet public key.
//!
//! Only the glue is written here; the primitives are libsecp256k1's for the curve (the `secp256k1`
//! crate: the ephemeral key, `R = r·G` and the ECDH point) and RustCrypto's for the rest (`aes` + `ctr`,
//! `sha2`, `hmac`):
//!
//! 1. an ephemeral key `r`, `R = r·G`; shared secret `z` = x coordinate of `r·Pub` (32 bytes);
//! 2. `K = concatKDF_SHA256(z, s1 = ∅, 32)`: `SHA256(00000001 ‖ z)` (one block suffices);
//! 3. `Ke = K[0..16]`, `Km = SHA256(K[16..32])` (go-ethereum hashes the MAC key);
//! 4. `em = IV ‖ AES-128-CTR(Ke, IV, m)` with a random 16-byte IV (128-bit big-endian counter);
//! 5. `tag = HMAC-SHA256(Km, em ‖ s2 = ∅)`;
//! 6. ciphertext = `04 ‖ R.x ‖ R.y` (65 bytes) ‖ `em` ‖ `tag` (32 bytes).
//!
//! [`encrypt`] draws a fresh `r` per ciphertext, as go-ethereum does. An [`Encryptor`] keeps one `r`
//! (hence `Ke`, `Km`) for many ciphertexts with a fresh IV each, and a [`Decryptor`] remembers the keys
//! of the last `R` it saw: the provider uses one ephemeral key per streamed answer, so each router
//! does one ECDH per answer instead of one per frame. The format is unchanged.
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

/// Encrypts `plaintext` to `recipient_public_key` (65-byte uncompressed or 33-byte compressed) with a
/// fresh ephemeral key: one [`Encryptor`] used once.
pub fn encrypt(recipient_public_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    Ok(Encryptor::new(recipient_public_key)?.encrypt(plaintext))
}

/// [`encrypt`], hex-encoded as the reference puts it into `message` (lower case, no `0x`).
pub fn encrypt_hex(recipient_public_key: &[u8], plaintext: &[u8]) -> Result<String, ProtocolError> {
    encrypt(recipient_public_key, plaintext).map(hex::encode)
}

/// Encryption with a given ephemeral key and IV: deterministic, for the test vectors.
#[cfg(test)]
pub(crate) fn encrypt_with(
    recipient: &PublicKey,
    ephemeral: &SecretKey,
    iv: [u8; IV_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    Ok(Encryptor::with_ephemeral(recipient, ephemeral)?.encrypt_with_iv(iv, plaintext))
}

/// Decrypts a ciphertext addressed to `recipient`'s public key (each ciphertext on its own, as
/// go-ethereum does: one ECDH per call).
pub fn decrypt(recipient: &PrivateKeySigner, ciphertext: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    Decryptor::new(recipient)?.decrypt(ciphertext)
}

/// Decrypts the hex form used on the wire (with or without `0x`).
pub fn decrypt_hex(recipient: &PrivateKeySigner, ciphertext_hex: &str) -> Result<Vec<u8>, ProtocolError> {
    decrypt(recipient, &unhex(ciphertext_hex)?)
}

/// One ephemeral key for many ciphertexts to one recipient: the ECDH and the key derivation happen
/// once, in [`Encryptor::new`]; every [`Encryptor::encrypt`] draws a fresh random IV and costs only
/// AES-CTR and HMAC. The provider uses one per streamed answer (all frames of one `session.prompt`).
///
/// Every ciphertext is in go-ethereum's format and self-contained (it carries `R`), so a peer that
/// decrypts each on its own with [`decrypt`] (or go-ethereum's `ecies.Decrypt`) reads them unchanged;
/// they merely share `R`, hence `Ke` and `Km`, and differ in IV. Under one key, random 128-bit IVs
/// keep the CTR keystreams apart (a collision needs ~2^64 frames), as in a TLS record layer.
pub struct Encryptor {
    /// `04 ‖ R.x ‖ R.y`.
    ephemeral: [u8; EPHEMERAL_LEN],
    ke: [u8; 16],
    /// HMAC-SHA256 keyed with `Km`, cloned for each ciphertext.
    mac: HmacSha256,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor").field("ephemeral", &hex::encode(self.ephemeral)).finish_non_exhaustive()
    }
}

impl Encryptor {
    /// A fresh ephemeral key for `recipient_public_key` (65-byte uncompressed or 33-byte compressed).
    pub fn new(recipient_public_key: &[u8]) -> Result<Self, ProtocolError> {
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
        Self::with_ephemeral(&recipient, &ephemeral)
    }

    /// With a given ephemeral key: deterministic, for the test vectors.
    pub(crate) fn with_ephemeral(
        recipient: &PublicKey,
        ephemeral: &SecretKey,
    ) -> Result<Self, ProtocolError> {
        let (ke, km) = derive_keys(&shared_x(recipient, ephemeral));
        Ok(Self {
            ephemeral: PublicKey::from_secret_key(&SECP256K1, ephemeral).serialize_uncompressed(),
            ke,
            mac: keyed_mac(&km)?,
        })
    }

    /// The ephemeral public key `R` (uncompressed) that starts every ciphertext of this encryptor.
    pub fn ephemeral_public_key(&self) -> &[u8; EPHEMERAL_LEN] {
        &self.ephemeral
    }

    /// Encrypts `plaintext` with a fresh random IV.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut iv = [0u8; IV_LEN];
        rand::rng().fill(&mut iv[..]);
        self.encrypt_with_iv(iv, plaintext)
    }

    /// [`Encryptor::encrypt`], hex-encoded as on the wire (lower case, no `0x`).
    pub fn encrypt_hex(&self, plaintext: &[u8]) -> String {
        hex::encode(self.encrypt(plaintext))
    }

    fn encrypt_with_iv(&self, iv: [u8; IV_LEN], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MIN_CIPHERTEXT_LEN + plaintext.len());
        out.extend_from_slice(&self.ephemeral);
        out.extend_from_slice(&iv);
        let body_start = out.len();
        out.extend_from_slice(plaintext);
        Aes128Ctr::new(&self.ke.into(), &iv.into()).apply_keystream(&mut out[body_start..]);
        let mut mac = self.mac.clone();
        mac.update(&out[EPHEMERAL_LEN..]);
        let tag = mac.finalize().into_bytes();
        out.extend_from_slice(&tag);
        out
    }
}

/// Decrypts a stream of ciphertexts to one recipient, remembering `Ke` and `Km` for the last
/// ephemeral key `R` it authenticated: ciphertexts that repeat that `R` (the frames of one answer
/// from an [`Encryptor`]) cost no ECDH; any other `R` (a go-ethereum peer draws one per frame) is
/// derived afresh. Every ciphertext's MAC is checked with the keys of its own `R`.
pub struct Decryptor {
    recipient: SecretKey,
    cached: Option<CachedKeys>,
}

struct CachedKeys {
    ephemeral: [u8; EPHEMERAL_LEN],
    ke: [u8; 16],
    mac: HmacSha256,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("cached_ephemeral", &self.cached.as_ref().map(|c| hex::encode(c.ephemeral)))
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// A decryptor for ciphertexts addressed to `recipient`'s public key (bound to it: the cached keys
    /// are never used for another recipient).
    pub fn new(recipient: &PrivateKeySigner) -> Result<Self, ProtocolError> {
        let recipient = secret_key(recipient)
            .map_err(|_| ProtocolError::Decrypt { reason: "recipient key is not a secp256k1 secret key" })?;
        Ok(Self { recipient, cached: None })
    }

    /// Decrypts one ciphertext, reusing the derived keys when its `R` is the last one seen.
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        if ciphertext.len() < MIN_CIPHERTEXT_LEN {
            return Err(ProtocolError::Decrypt { reason: "ciphertext shorter than key, IV and tag" });
        }
        if ciphertext[0] != 0x04 {
            return Err(ProtocolError::Decrypt { reason: "ephemeral key is not an uncompressed point" });
        }
        let (r, rest) = ciphertext.split_at(EPHEMERAL_LEN);
        let (em, tag) = rest.split_at(rest.len() - TAG_LEN);
        if let Some(cached) = self.cached.as_ref().filter(|c| c.ephemeral[..] == r[..]) {
            return open(&cached.ke, &cached.mac, em, tag);
        }
        let ephemeral = PublicKey::from_slice(r)
            .map_err(|_| ProtocolError::Decrypt { reason: "ephemeral key is not on secp256k1" })?;
        let (ke, km) = derive_keys(&shared_x(&ephemeral, &self.recipient));
        let mac = keyed_mac(&km)?;
        let plaintext = open(&ke, &mac, em, tag)?;
        // Cached only once a ciphertext under this `R` authenticated.
        let mut cached_r = [0u8; EPHEMERAL_LEN];
        cached_r.copy_from_slice(r);
        self.cached = Some(CachedKeys { ephemeral: cached_r, ke, mac });
        Ok(plaintext)
    }

    /// [`Decryptor::decrypt`] of the hex form used on the wire (with or without `0x`).
    pub fn decrypt_hex(&mut self, ciphertext_hex: &str) -> Result<Vec<u8>, ProtocolError> {
        self.decrypt(&unhex(ciphertext_hex)?)
    }
}

/// Checks the tag over `em = IV ‖ body` and decrypts the body.
fn open(ke: &[u8; 16], mac: &HmacSha256, em: &[u8], tag: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let mut mac = mac.clone();
    mac.update(em);
    mac.verify_slice(tag).map_err(|_| ProtocolError::Decrypt { reason: "MAC mismatch" })?;
    let (iv, body) = em.split_at(IV_LEN);
    let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| ProtocolError::Decrypt { reason: "IV length" })?;
    let mut plaintext = body.to_vec();
    Aes128Ctr::new(&(*ke).into(), &iv.into()).apply_keystream(&mut plaintext);
    Ok(plaintext)
}

fn unhex(ciphertext_hex: &str) -> Result<Vec<u8>, ProtocolError> {
    let digits = ciphertext_hex
        .strip_prefix("0x")
        .or_else(|| ciphertext_hex.strip_prefix("0X"))
        .unwrap_or(ciphertext_hex);
    hex::decode(digits).map_err(|_| ProtocolError::Decrypt { reason: "ciphertext is not hex" })
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

fn keyed_mac(km: &[u8; 32]) -> Result<HmacSha256, ProtocolError> {
    // HMAC takes keys of any length; this cannot fail.
    HmacSha256::new_from_slice(km).map_err(|_| ProtocolError::Decrypt { reason: "MAC key length" })
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

    #[test]
    fn one_encryptor_shares_r_and_each_frame_decrypts_alone_and_through_a_decryptor() {
        let recipient = PrivateKeySigner::random();
        let encryptor = Encryptor::new(&uncompressed_public_key(&recipient)).unwrap();
        let mut decryptor = Decryptor::new(&recipient).unwrap();
        let plaintexts: Vec<Vec<u8>> = (0..20).map(|i| format!("chunk {i}").into_bytes()).collect();
        let frames: Vec<Vec<u8>> = plaintexts.iter().map(|p| encryptor.encrypt(p)).collect();
        let mut ivs = std::collections::HashSet::new();
        for (frame, plaintext) in frames.iter().zip(&plaintexts) {
            assert_eq!(&frame[..EPHEMERAL_LEN], &encryptor.ephemeral_public_key()[..]);
            assert_eq!(frame.len(), MIN_CIPHERTEXT_LEN + plaintext.len());
            assert!(ivs.insert(frame[EPHEMERAL_LEN..EPHEMERAL_LEN + IV_LEN].to_vec()), "IV repeated");
            // What a Go peer does: every frame on its own.
            assert_eq!(&decrypt(&recipient, frame).unwrap(), plaintext);
            assert_eq!(&decryptor.decrypt(frame).unwrap(), plaintext);
        }
        // The same plaintext twice: same R, different IV and ciphertext.
        let (a, b) = (encryptor.encrypt(b"same"), encryptor.encrypt(b"same"));
        assert_eq!(a[..EPHEMERAL_LEN], b[..EPHEMERAL_LEN]);
        assert_ne!(a[EPHEMERAL_LEN..], b[EPHEMERAL_LEN..]);
        assert_eq!(decryptor.decrypt_hex(&hex::encode(&a)).unwrap(), b"same");
        assert_eq!(decrypt_hex(&recipient, &encryptor.encrypt_hex(b"same")).unwrap(), b"same");
        // Two encryptors (two answers) have different ephemeral keys.
        let other = Encryptor::new(&uncompressed_public_key(&recipient)).unwrap();
        assert_ne!(other.ephemeral_public_key(), encryptor.ephemeral_public_key());
    }

    #[test]
    fn a_decryptor_reads_a_new_r_per_frame_and_alternating_answers() {
        let recipient = PrivateKeySigner::random();
        let public = uncompressed_public_key(&recipient);
        let mut decryptor = Decryptor::new(&recipient).unwrap();
        for i in 0..10u8 {
            let frame = encrypt(&public, &[i; 50]).unwrap();
            assert_eq!(decryptor.decrypt(&frame).unwrap(), [i; 50]);
        }
        let (first, second) = (Encryptor::new(&public).unwrap(), Encryptor::new(&public).unwrap());
        for i in 0..6u8 {
            let encryptor = if i % 2 == 0 { &first } else { &second };
            assert_eq!(decryptor.decrypt(&encryptor.encrypt(&[i])).unwrap(), [i]);
        }
    }

    #[test]
    fn a_tampered_frame_fails_the_mac_even_with_the_cached_r() {
        let recipient = PrivateKeySigner::random();
        let encryptor = Encryptor::new(&uncompressed_public_key(&recipient)).unwrap();
        let mut decryptor = Decryptor::new(&recipient).unwrap();
        assert_eq!(decryptor.decrypt(&encryptor.encrypt(b"first")).unwrap(), b"first");
        let frame = encryptor.encrypt(b"secret payload");
        for i in EPHEMERAL_LEN..frame.len() {
            let mut tampered = frame.clone();
            tampered[i] ^= 0x01;
            assert!(
                matches!(
                    decryptor.decrypt(&tampered),
                    Err(ProtocolError::Decrypt { reason: "MAC mismatch" })
                ),
                "byte {i}"
            );
        }
        for i in 0..EPHEMERAL_LEN {
            let mut tampered = frame.clone();
            tampered[i] ^= 0x01;
            assert!(matches!(decryptor.decrypt(&tampered), Err(ProtocolError::Decrypt { .. })), "byte {i}");
        }
        // A truncated frame with the cached R.
        assert!(matches!(
            decryptor.decrypt(&frame[..MIN_CIPHERTEXT_LEN - 1]),
            Err(ProtocolError::Decrypt { .. })
        ));
        // The cache survived the failures.
        assert_eq!(decryptor.decrypt(&frame).unwrap(), b"secret payload");
    }

    #[test]
    fn a_decryptor_for_another_key_never_uses_the_cache_of_the_right_one() {
        let recipient = PrivateKeySigner::random();
        let encryptor = Encryptor::new(&uncompressed_public_key(&recipient)).unwrap();
        let frame = encryptor.encrypt(b"x");
        let mut right = Decryptor::new(&recipient).unwrap();
        assert_eq!(right.decrypt(&frame).unwrap(), b"x");
        let mut wrong = Decryptor::new(&PrivateKeySigner::random()).unwrap();
        assert!(matches!(wrong.decrypt(&frame), Err(ProtocolError::Decrypt { reason: "MAC mismatch" })));
        assert!(matches!(wrong.decrypt(&frame), Err(ProtocolError::Decrypt { reason: "MAC mismatch" })));
    }
}
