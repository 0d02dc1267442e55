//! The worked examples of the reference notes (§3.10), reproduced byte for byte: signed bytes,
//! keccak hashes, signatures, recovered addresses, ABI artifacts and the ECIES ciphertext. Plus the
//! tamper, wrong-signer and round-trip tests of the message layer.

use alloy::primitives::{address, b256, hex, keccak256, Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;

use super::artifacts::{artifact_signer, ReportTokens, SessionApproval, SessionReport};
use super::ecies;
use super::error::ProtocolError;
use super::gojson::to_go_json;
use super::messages::*;
use super::signing::{public_key_address, uncompressed_public_key, Signable};

/// Hardhat account #2: the consumer.
const USER_KEY: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const USER: Address = address!("3c44cdddb6a900fa2b585dd299e03d12fa4293bc");
const USER_PUBKEY: &str = "049d9031e97dd78ff8c15aa86939de9b1e791066a0224e331bc962a2099a7b1f0464b8bbafe1535f2301c72c2cb3535b172da30b02686ab0393d348614f157fbdb";

/// Hardhat account #1: the provider.
const PROVIDER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PROVIDER: Address = address!("70997970c51812dc3a010c7d01b50e0d17dc79c8");
const PROVIDER_PUBKEY: &str = "04ba5734d8f7091719471e7f7ed6b9df170dc70cc661ca05e688601ad984f068b0d67351e5f06073092499336ab0839ef8a521afd334e53807205fa2f08eec74f4";

const BID_ID: B256 = b256!("b0119306909b29feb8a2a30f343c32f7ceb0927325a4a6e4936d11d1236556c3");
const SESSION_ID: B256 = B256::repeat_byte(0x11);
const CHAIN_ID: u64 = 8453;

fn user() -> PrivateKeySigner {
    USER_KEY.parse().unwrap()
}

fn provider() -> PrivateKeySigner {
    PROVIDER_KEY.parse().unwrap()
}

fn bytes(hex_text: &str) -> Bytes {
    Bytes::from(hex::decode(hex_text).unwrap())
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

// ---------------------------------------------------------------------------------------------------
// Vector 1: session.request
// ---------------------------------------------------------------------------------------------------

const SESSION_REQ_SIGNED: &str = r#"{"user":"0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc","key":"0x049d9031e97dd78ff8c15aa86939de9b1e791066a0224e331bc962a2099a7b1f0464b8bbafe1535f2301c72c2cb3535b172da30b02686ab0393d348614f157fbdb","spend":"270233162839357259772","timestamp":1719253477054,"bidid":"0xb0119306909b29feb8a2a30f343c32f7ceb0927325a4a6e4936d11d1236556c3"}"#;
const SESSION_REQ_HASH: B256 = b256!("14f6bcff3639672bdd84a1f257ab83630c3a4370a209a3c5166e69bed3cd07b2");
const SESSION_REQ_SIG: &str = "dc66ce09efbecdd77f273a82d672af222d3cf2afb17472cfa44dd580906563d41f954b8667f46d8d5259ec6f55889773d94236372e8632c1ba3efa4b2c5ad9fa00";

fn session_req() -> SessionReq {
    SessionReq::build(&user(), USER, U256::from(270_233_162_839_357_259_772_u128), BID_ID, 1_719_253_477_054)
        .unwrap()
}

#[test]
fn vector_1_session_request_bytes_hash_signature_and_wire() {
    let req = session_req();
    assert_eq!(req.key, bytes(USER_PUBKEY));
    assert_eq!(text(&req.signing_bytes().unwrap()), SESSION_REQ_SIGNED);
    assert_eq!(req.signing_hash().unwrap(), SESSION_REQ_HASH);
    assert_eq!(keccak256(SESSION_REQ_SIGNED), SESSION_REQ_HASH);
    assert_eq!(req.signature, bytes(SESSION_REQ_SIG));
    assert_eq!(req.verify().unwrap(), USER);
    req.ensure_key_is_user().unwrap();

    let wire = RpcMessage::new("1", method::SESSION_REQUEST, &req).unwrap().to_vec().unwrap();
    let expected = format!(
        r#"{{"id":"1","method":"session.request","params":{{"signature":"0x{SESSION_REQ_SIG}",{}}}"#,
        &SESSION_REQ_SIGNED[1..]
    );
    assert_eq!(text(&wire), expected);

    // The provider's side: parse the frame, dispatch, verify.
    let parsed = RpcMessage::from_slice(&wire).unwrap();
    let Request::SessionRequest(received) = parsed.request().unwrap() else {
        panic!("not a session.request")
    };
    assert_eq!(received, req);
    assert_eq!(received.verify().unwrap(), USER);
}

// ---------------------------------------------------------------------------------------------------
// Vector 2: approval and SessionRes
// ---------------------------------------------------------------------------------------------------

const APPROVAL: &str = concat!(
    "b0119306909b29feb8a2a30f343c32f7ceb0927325a4a6e4936d11d1236556c3",
    "0000000000000000000000000000000000000000000000000000000000002105",
    "0000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc",
    "000000000000000000000000000000000000000000000000000001904b7e2aeb",
);
const APPROVAL_SIG: &str = "59f297b28370a6f00f5c10a527a036c43fa15e1ff53a1b45f69a5e7eb13304c70d0c1d4cfef7369558a61a7156afb3d9e60c556ecdb9f54b89fbb35bc654c7341b";
const SESSION_RES_SIG: &str = "b348b0998aadb413de200b30333065ddc7abd2446dadb6a8ddc14bb0bac0d4c43bb88fda149efb0d2839ffc78a9c129425584befb6af7a74919f8be4618efde300";
const APPROVAL_TS: u64 = 1_719_253_478_123;

fn session_res_signed_bytes() -> String {
    format!(
        r#"{{"message":"0x{PROVIDER_PUBKEY}","approval":"0x{APPROVAL}","approvalSig":"0x{APPROVAL_SIG}","user":"0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc","timestamp":{APPROVAL_TS}}}"#
    )
}

#[test]
fn vector_2_approval_encoding_and_eip191_signature() {
    let approval = SessionApproval {
        bid_id: BID_ID,
        chain_id: U256::from(CHAIN_ID),
        user: USER,
        timestamp_ms: APPROVAL_TS.into(),
    };
    assert_eq!(approval.encode(), bytes(APPROVAL));
    let (encoded, signature) = approval.sign(&provider()).unwrap();
    assert_eq!(encoded, bytes(APPROVAL));
    assert_eq!(signature, bytes(APPROVAL_SIG));
    assert_eq!(artifact_signer(&encoded, &signature).unwrap(), PROVIDER);
    assert_eq!(SessionApproval::decode(&encoded).unwrap(), approval);
}

#[test]
fn vector_2_session_res_bytes_signature_and_wire() {
    let res = SessionRes::build(&provider(), BID_ID, U256::from(CHAIN_ID), USER, APPROVAL_TS).unwrap();
    assert_eq!(res.public_key, bytes(PROVIDER_PUBKEY));
    assert_eq!(text(&res.signing_bytes().unwrap()), session_res_signed_bytes());
    assert_eq!(res.signature, bytes(SESSION_RES_SIG));
    assert_eq!(res.verify().unwrap(), PROVIDER);
    res.decode_approval().unwrap().check(BID_ID, U256::from(CHAIN_ID), USER).unwrap();

    let wire = RpcResponse::result("1", &res).unwrap().to_vec().unwrap();
    let signed = session_res_signed_bytes();
    let expected = format!(
        r#"{{"id":"1","result":{},"signature":"0x{SESSION_RES_SIG}"}}}}"#,
        &signed[..signed.len() - 1]
    );
    assert_eq!(text(&wire), expected);

    // The consumer's side.
    let parsed: SessionRes = RpcResponse::from_slice(&wire).unwrap().parse_result().unwrap();
    assert_eq!(parsed, res);
    assert_eq!(parsed.verify().unwrap(), PROVIDER);
}

// ---------------------------------------------------------------------------------------------------
// Vector 3: session.prompt (Go HTML escaping inside the signed bytes)
// ---------------------------------------------------------------------------------------------------

const PROMPT_MESSAGE: &str = r#"{"messages":[{"role":"user","content":"hi <b>"}],"model":"","stream":true}"#;
const PROMPT_SIGNED: &str = r#"{"sessionid":"0x1111111111111111111111111111111111111111111111111111111111111111","message":"{\"messages\":[{\"role\":\"user\",\"content\":\"hi \u003cb\u003e\"}],\"model\":\"\",\"stream\":true}","timestamp":1719253478500}"#;
const PROMPT_HASH: B256 = b256!("7b99495f0570e49a2c4bb2cd62e9aba2c328a353759c8a1e646e53d703571ab6");
const PROMPT_SIG: &str = "f1f0d8fd7f9694888c414f2085da971d607faf5e6374aa114364af89159d6e0b5a3f3f839dc82ca9100b49884b053b37a0ac721eaf0a4480cb38513138131ac701";

fn prompt() -> SessionPromptReq {
    SessionPromptReq::build(&user(), SESSION_ID, PROMPT_MESSAGE, 1_719_253_478_500).unwrap()
}

#[test]
fn vector_3_session_prompt_bytes_hash_and_signature() {
    let req = prompt();
    assert_eq!(text(&req.signing_bytes().unwrap()), PROMPT_SIGNED);
    assert_eq!(req.signing_hash().unwrap(), PROMPT_HASH);
    assert_eq!(req.signature, bytes(PROMPT_SIG));
    assert_eq!(req.verify_public_key(&bytes(USER_PUBKEY)).unwrap(), USER);

    // The wire form escapes the same way, and decoding restores the raw characters.
    let wire = RpcMessage::new("7", method::SESSION_PROMPT, &req).unwrap().to_vec().unwrap();
    assert!(text(&wire).contains(r"hi \u003cb\u003e"));
    let Request::SessionPrompt(received) = RpcMessage::from_slice(&wire).unwrap().request().unwrap() else {
        panic!("not a prompt")
    };
    assert_eq!(received.message, PROMPT_MESSAGE);
    received.verify_signer(USER).unwrap();
}

// ---------------------------------------------------------------------------------------------------
// Vector 4: report
// ---------------------------------------------------------------------------------------------------

const REPORT: &str = concat!(
    "1111111111111111111111111111111111111111111111111111111111111111",
    "0000000000000000000000000000000000000000000000000000000000002105",
    "000000000000000000000000000000000000000000000000000001904be1af00",
    "00000000000000000000000000000000000000000000000000000000000061a8",
    "0000000000000000000000000000000000000000000000000000000000000352",
    "0000000000000000000000000000000000000000000000000000000000000078",
    "0000000000000000000000000000000000000000000000000000000000000d48",
);
const SIGNED_REPORT: &str = "ec81a954dec6b4ea8048bf69529d3fd4f1ffe348a8093c44f06c9fcaa900c2e71b1f1c5874cd35a4e8dbe4de2b5ed34608c78c5f3584fcc5043a509ebdc239611b";
const REPORT_REQ_SIGNED: &str = r#"{"message":"0x1111111111111111111111111111111111111111111111111111111111111111","timestamp":1719260000000}"#;
const REPORT_REQ_SIG: &str = "369ba0c794f5cf73c10f81d7f050a0969983364db2ad9ac50075dd36d06ea8ee0d250b72b0dec7850dc1ba078ebbd7ae5952f8cfe7493d490c2dbf9777c41db100";
const REPORT_TS: u64 = 1_719_260_000_000;

fn report() -> SessionReport {
    SessionReport {
        session_id: SESSION_ID,
        chain_id: U256::from(CHAIN_ID),
        timestamp_ms: REPORT_TS.into(),
        tps_scaled1000: 25_000,
        ttft_ms: 850,
        tokens: Some(ReportTokens { input: 120, output: 3400 }),
    }
}

#[test]
fn vector_4_report_encoding_and_signature() {
    assert_eq!(report().encode(), bytes(REPORT));
    let (encoded, signed_report) = report().sign(&provider()).unwrap();
    assert_eq!(signed_report, bytes(SIGNED_REPORT));
    assert_eq!(artifact_signer(&encoded, &signed_report).unwrap(), PROVIDER);
    assert_eq!(SessionReport::decode(&encoded).unwrap(), report());

    let res = SessionReportRes::build(&provider(), &report(), REPORT_TS).unwrap();
    assert_eq!(res.message, bytes(REPORT));
    assert_eq!(res.signed_report, bytes(SIGNED_REPORT));
    res.verify_signer(PROVIDER).unwrap();
    assert_eq!(res.report_signer().unwrap(), PROVIDER);
    assert_eq!(res.decode_report().unwrap(), report());
    assert_eq!(
        text(&res.signing_bytes().unwrap()),
        format!(r#"{{"message":"0x{REPORT}","signedReport":"0x{SIGNED_REPORT}","timestamp":{REPORT_TS}}}"#)
    );
}

#[test]
fn vector_4_report_request_bytes_and_signature() {
    let req = SessionReportReq::build(&user(), SESSION_ID, REPORT_TS).unwrap();
    assert_eq!(text(&req.signing_bytes().unwrap()), REPORT_REQ_SIGNED);
    assert_eq!(req.signature, bytes(REPORT_REQ_SIG));
    assert_eq!(req.session_id().unwrap(), SESSION_ID);
    req.verify_signer(USER).unwrap();
}

// ---------------------------------------------------------------------------------------------------
// Vector 5: ping / pong (signature key present as "0x" in the signed bytes)
// ---------------------------------------------------------------------------------------------------

const PING_SIG: &str = "b9b8518e6c4285244b575e982a75483641ae6435d73c2a10cbb36599fd58b5f607a5d969169862c0d12c395845cc97d630aefa68cb2435ad1633f95363da2bf500";
const PONG_SIG: &str = "651a804ab53fa27b9a84facd6c6869fac73ade49c1c52acb3f740b97d99e094732521a99ecd526d204f2716c238280561dee7dddbbe3830cd6c946cb58a4923700";

fn ping() -> PingReq {
    PingReq { nonce: bytes("0102030405060708"), signature: Bytes::new() }.signed(&user()).unwrap()
}

#[test]
fn vector_5_ping_and_pong() {
    let ping = ping();
    assert_eq!(text(&ping.signing_bytes().unwrap()), r#"{"nonce":"0x0102030405060708","signature":"0x"}"#);
    assert_eq!(ping.signature, bytes(PING_SIG));
    assert_eq!(ping.recover_signer().unwrap(), USER);

    let pong = PongRes::answer(&ping, "v7.0.0", &provider()).unwrap();
    assert_eq!(
        text(&pong.signing_bytes().unwrap()),
        r#"{"nonce":"0x0102030405060708","version":"v7.0.0","signature":"0x"}"#
    );
    assert_eq!(pong.signature, bytes(PONG_SIG));
    pong.verify(&ping, PROVIDER).unwrap();
    assert!(matches!(pong.verify(&ping, USER), Err(ProtocolError::WrongSigner { .. })));

    let wire = RpcResponse::result("1", &pong).unwrap().to_vec().unwrap();
    assert_eq!(
        text(&wire),
        format!(
            r#"{{"id":"1","result":{{"nonce":"0x0102030405060708","version":"v7.0.0","signature":"0x{PONG_SIG}"}}}}"#
        )
    );
    // Without a version the key is omitted.
    let bare = PongRes { version: String::new(), ..pong };
    assert_eq!(text(&bare.signing_bytes().unwrap()), r#"{"nonce":"0x0102030405060708","signature":"0x"}"#);
}

// ---------------------------------------------------------------------------------------------------
// Vector 6: ECIES
// ---------------------------------------------------------------------------------------------------

const ECIES_CIPHERTEXT: &str = "041b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f70beaf8f588b541507fed6a642c5ab42dfdf8120a7f639de5122d47a69a8e8d1000102030405060708090a0b0c0d0e0f8dc14ae89530d8e40281e143d2dec8bdc52dca524703eb85778178aeebc57ef30756b4d19fda6ca8";

#[test]
fn vector_6_ecies_fixed_ephemeral_key_and_iv() {
    let recipient = secp256k1::PublicKey::from_slice(&bytes(USER_PUBKEY)).unwrap();
    let ephemeral = secp256k1::SecretKey::from_byte_array([0x01; 32]).unwrap();
    let iv: [u8; 16] = core::array::from_fn(|i| i as u8);
    let ciphertext = ecies::encrypt_with(&recipient, &ephemeral, iv, DONE_PLAINTEXT).unwrap();
    assert_eq!(hex::encode(&ciphertext), ECIES_CIPHERTEXT);
    assert_eq!(ciphertext.len(), 65 + 16 + 8 + 32);
}

#[test]
fn vector_6_ecies_decrypts_with_the_user_key() {
    assert_eq!(ecies::decrypt_hex(&user(), ECIES_CIPHERTEXT).unwrap(), DONE_PLAINTEXT);
    assert_eq!(ecies::decrypt_hex(&user(), &format!("0x{ECIES_CIPHERTEXT}")).unwrap(), DONE_PLAINTEXT);
    assert!(matches!(ecies::decrypt_hex(&provider(), ECIES_CIPHERTEXT), Err(ProtocolError::Decrypt { .. })));
}

// ---------------------------------------------------------------------------------------------------
// The message layer around the vectors: tamper, wrong signer, streamed chunks, errors
// ---------------------------------------------------------------------------------------------------

/// Flips the low bit of every byte of the signed object inside a wire frame (`key` names it: `"params":` or
/// `"result":`; the envelope's `id` is not signed, as in the reference). Each variant must fail to
/// parse or fail verification against the real signer — never verify.
fn assert_every_byte_matters<F>(wire: &[u8], key: &str, verify: F)
where
    F: Fn(&[u8]) -> Result<(), ProtocolError>,
{
    verify(wire).unwrap();
    let start = text(wire).find(key).unwrap() + key.len();
    let end = wire.len() - 1;
    for i in start..end {
        let mut tampered = wire.to_vec();
        tampered[i] ^= 0x01;
        assert!(verify(&tampered).is_err(), "byte {i} changed to {:?} still verifies", tampered[i] as char);
    }
}

#[test]
fn any_changed_byte_of_a_signed_request_fails_verification() {
    let wire = RpcMessage::new("1", method::SESSION_PROMPT, &prompt()).unwrap().to_vec().unwrap();
    assert_every_byte_matters(&wire, r#""params":"#, |frame| {
        let message = RpcMessage::from_slice(frame)?;
        if message.method != method::SESSION_PROMPT {
            return Err(ProtocolError::UnknownMethod { method: message.method });
        }
        let prompt: SessionPromptReq = message.params()?;
        prompt.verify_signer(USER)
    });
}

#[test]
fn any_changed_byte_of_a_signed_handshake_fails_verification() {
    let wire = RpcMessage::new("1", method::SESSION_REQUEST, &session_req()).unwrap().to_vec().unwrap();
    assert_every_byte_matters(&wire, r#""params":"#, |frame| {
        let Request::SessionRequest(req) = RpcMessage::from_slice(frame)?.request()? else {
            return Err(ProtocolError::json("test", "other method"));
        };
        // The self-asserted key could be swapped together with the signature only by the key's owner;
        // pin the expected signer as the provider does with `ensure_key_is_user`.
        req.ensure_key_is_user()?;
        req.verify_signer(USER)
    });
}

#[test]
fn any_changed_byte_of_a_signed_response_fails_verification() {
    let res = SessionRes::build(&provider(), BID_ID, U256::from(CHAIN_ID), USER, APPROVAL_TS).unwrap();
    let wire = RpcResponse::result("1", &res).unwrap().to_vec().unwrap();
    assert_every_byte_matters(&wire, r#""result":"#, |frame| {
        let res: SessionRes = RpcResponse::from_slice(frame)?.parse_result()?;
        let signer = res.verify()?;
        if signer != PROVIDER {
            return Err(ProtocolError::WrongSigner { expected: PROVIDER, actual: signer });
        }
        res.decode_approval()?.check(BID_ID, U256::from(CHAIN_ID), USER)
    });
}

#[test]
fn a_request_signed_by_someone_else_is_a_wrong_signer() {
    let intruder = PrivateKeySigner::random();
    let forged = SessionPromptReq::build(&intruder, SESSION_ID, PROMPT_MESSAGE, 1_719_253_478_500).unwrap();
    assert!(matches!(
        forged.verify_public_key(&bytes(USER_PUBKEY)),
        Err(ProtocolError::WrongSigner { expected: USER, actual }) if actual == intruder.address()
    ));
    // A handshake claiming the user with the intruder's own key verifies the Go way (self-asserted
    // key) but fails the binding check.
    let claimed = SessionReq::build(&intruder, USER, U256::from(1), BID_ID, 1).unwrap();
    assert_eq!(claimed.verify().unwrap(), intruder.address());
    assert!(matches!(claimed.ensure_key_is_user(), Err(ProtocolError::WrongSigner { expected: USER, .. })));
    // The real signature transplanted onto another user's message does not verify.
    let mut transplanted = prompt();
    transplanted.session_id = B256::repeat_byte(0x22);
    assert!(transplanted.verify_signer(USER).is_err());
}

#[test]
fn streamed_prompt_chunks_round_trip() {
    let consumer_key = uncompressed_public_key(&user());
    let chunks: [&[u8]; 2] = [br#"{"object":"chat.completion.chunk","choices":[]}"#, DONE_PLAINTEXT];
    let mut wire = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let res = SessionPromptRes::encrypt(&provider(), &consumer_key, chunk, 1_719_253_479_000 + i as u64)
            .unwrap();
        assert!(res.message.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        wire.extend(RpcResponse::result("7", &res).unwrap().to_vec().unwrap());
    }

    use tokio_util::codec::Decoder as _;
    let mut codec = super::MorRpcCodec::default();
    let mut buf = bytes::BytesMut::from(&wire[..]);
    let mut received = Vec::new();
    while let Some(frame) = codec.decode_eof(&mut buf).unwrap() {
        let res: SessionPromptRes = RpcResponse::from_slice(&frame).unwrap().parse_result().unwrap();
        assert_eq!(res.verify_public_key(&bytes(PROVIDER_PUBKEY)).unwrap(), PROVIDER);
        received.push(res.decrypt(&user()).unwrap());
    }
    assert_eq!(received, chunks.map(<[u8]>::to_vec));
}

#[test]
fn unsigned_error_has_the_reference_shape() {
    let response = RpcResponse::error("1", RpcError::unsigned("session expired", 1_719_253_478_500));
    let wire = response.to_vec().unwrap();
    assert_eq!(
        text(&wire),
        r#"{"id":"1","result":null,"error":{"message":"session expired","code":400,"data":{"timestamp":1719253478500,"signature":"0x00"}}}"#
    );
    let parsed = RpcResponse::from_slice(&wire).unwrap();
    assert!(!parsed.error.as_ref().unwrap().is_signed());
    assert!(matches!(
        parsed.parse_result::<SessionPromptRes>(),
        Err(ProtocolError::Remote { message, signed: false }) if message == "session expired"
    ));
    // A nil signature pointer (JSON null) also reads as unsigned.
    let null_sig = br#"{"id":"1","result":null,"error":{"message":"x","code":400,"data":{"timestamp":1,"signature":null}}}"#;
    assert!(!RpcResponse::from_slice(null_sig).unwrap().error.unwrap().is_signed());
}

#[test]
fn signed_model_error_is_signed_over_signature_0x_and_decrypts() {
    let plaintext = br#"{"providerModelError":{"error":{"message":"bad <input>","type":"upstream_error"}}}"#;
    let error = RpcError::model_error(&provider(), &uncompressed_public_key(&user()), plaintext, 42).unwrap();
    let signed = text(&error.signing_bytes().unwrap()).to_owned();
    assert_eq!(
        signed,
        format!(r#"{{"message":"{}","code":400,"data":{{"timestamp":42,"signature":"0x"}}}}"#, error.message)
    );
    assert!(error.is_signed());
    error.verify_signer(PROVIDER).unwrap();

    let wire = RpcResponse::error("1", error).to_vec().unwrap();
    let received = RpcResponse::from_slice(&wire).unwrap().error.unwrap();
    received.verify_public_key(&bytes(PROVIDER_PUBKEY)).unwrap();
    assert_eq!(received.decrypt(&user()).unwrap(), plaintext);
}

#[test]
fn malformed_and_unknown_requests_are_typed_errors() {
    assert!(matches!(RpcMessage::from_slice(b"{\"id\":1}"), Err(ProtocolError::MalformedJson { .. })));
    assert!(matches!(
        RpcMessage::from_slice(b"{\"id\":\"1\",\"method\":\"x\"}"),
        Err(ProtocolError::MalformedJson { .. })
    ));
    let unknown = RpcMessage::from_slice(br#"{"id":"1","method":"agent.get_tools","params":{}}"#).unwrap();
    assert!(
        matches!(unknown.request(), Err(ProtocolError::UnknownMethod { method }) if method == "agent.get_tools")
    );
    let bad_params =
        RpcMessage::from_slice(br#"{"id":"1","method":"session.prompt","params":{"sessionid":"0x11"}}"#)
            .unwrap();
    let err = bad_params.request().unwrap_err();
    assert!(
        matches!(&err, ProtocolError::MalformedJson { reason, .. } if reason.contains("sessionid")),
        "{err}"
    );
}

#[test]
fn go_json_of_the_envelope_escapes_ids_and_methods_too() {
    let msg = RpcMessage::new("<id>", "a&b", &serde_json::json!({})).unwrap();
    assert_eq!(text(&msg.to_vec().unwrap()), r#"{"id":"\u003cid\u003e","method":"a\u0026b","params":{}}"#);
    assert_eq!(text(&to_go_json(&"\u{2028}", "t").unwrap()), r#""\u2028""#);
}

#[test]
fn public_keys_in_the_vectors_belong_to_the_accounts() {
    assert_eq!(public_key_address(&bytes(USER_PUBKEY)).unwrap(), USER);
    assert_eq!(public_key_address(&bytes(PROVIDER_PUBKEY)).unwrap(), PROVIDER);
    assert_eq!(user().address(), USER);
    assert_eq!(provider().address(), PROVIDER);
}
