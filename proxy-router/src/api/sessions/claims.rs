//! Provider claims: what a provider's ended sessions have earned and not yet been paid
//! (`/proxy/sessions/{id}/providerClaimableBalance`, `/proxy/sessions/provider-claimable`), and the
//! claims themselves (`providerClaim`, `provider-claim-all`).

use super::*;

/// What `claimForProvider` would pay for the session now (read on chain at the latest block,
/// including the provider's earning limit). `0` before the session's end: the contract pays nothing
/// then.
#[utoipa::path(
    get,
    path = "/proxy/sessions/{id}/providerClaimableBalance",
    tag = "sessions",
    operation_id = "getProviderClaimableBalance",
    params(("id" = String, Path, description = "Session id, 32 bytes hex")),
    responses(
        (status = 200, description = "Claimable now, MOR wei", body = BalanceResponse),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 503, description = "No chain connection or RPC unavailable", body = ErrorBody),
    )
)]
pub async fn provider_claimable_balance(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<BalanceResponse>, ApiError> {
    let id = parse_b256("id", &id?.0)?;
    let chain = state.chain()?;
    let head = Head::latest(chain).await?;
    let (session, price) = chain_session(chain, id, head.block_id())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session {id}")))?;
    let limit = provider_limit(chain, head, session.provider).await?;
    let claim = session_claim(&session, price, head.timestamp);
    Ok(Json(BalanceResponse { balance: claim.amount.min(limit.remaining).into() }))
}

/// Claims the session's earnings for its provider (`claimForProvider`); answers after the receipt
/// with the MOR received. 409 `nothing_to_claim` (with the reason) instead of a transaction that would
/// pay nothing.
#[utoipa::path(
    post,
    path = "/proxy/sessions/{id}/providerClaim",
    tag = "sessions",
    operation_id = "claimProviderBalance",
    params(("id" = String, Path, description = "Session id, 32 bytes hex")),
    responses(
        (status = 200, description = "Mined `claimForProvider`", body = ClaimResponse),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 403, description = "The wallet is not the session's provider nor its delegate (`not_session_provider`)", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "Nothing claimable now (`nothing_to_claim`; `reason` says why)", body = ErrorBody),
        (status = 422, description = "The transaction reverted", body = ErrorBody),
        (status = 503, description = "No chain or no wallet", body = ErrorBody),
    )
)]
pub async fn provider_claim(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ClaimResponse>, ApiError> {
    let id = parse_b256("id", &id?.0)?;
    let chain = state.chain()?;
    let signer = state.signer()?;
    let head = Head::latest(chain).await?;
    let (session, price) = chain_session(chain, id, head.block_id())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session {id}")))?;
    if !may_act_for(chain, head, signer.address(), session.provider).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_session_provider",
            format!(
                "only the session's provider {} or its session delegate may claim; this node's wallet is {}",
                lower_address(&session.provider),
                lower_address(&signer.address())
            ),
        ));
    }
    let limit = provider_limit(chain, head, session.provider).await?;
    let claim = session_claim(&session, price, head.timestamp);
    if claim.amount.min(limit.remaining).is_zero() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "nothing_to_claim",
            format!("session {id} has nothing to claim now"),
        )
        .with_reason(nothing_to_claim_reason(&claim, &limit, head.timestamp)));
    }
    let receipt = signer.sender.claim_for_provider(id).await?;
    let claimed = transfers_to(&receipt, chain.mor_token, session.provider);
    Ok(Json(ClaimResponse { tx: receipt.transaction_hash, claimed: claimed.into() }))
}

/// A provider's sessions with earnings to claim now, held, or still to come, and the total claimable
/// now. Computed from the local index at the chain's latest time; the earning limit is read on chain.
#[utoipa::path(
    get,
    path = "/proxy/sessions/provider-claimable",
    tag = "sessions",
    operation_id = "getProviderClaimable",
    params(("provider" = Option<String>, Query, description = "The provider (default: this node's wallet)")),
    responses(
        (status = 200, description = "Claimable earnings per session", body = ProviderClaimableResponse),
        (status = 400, description = "Invalid `provider`", body = ErrorBody),
        (status = 503, description = "No chain, or no wallet and no `provider`", body = ErrorBody),
    )
)]
pub async fn provider_claimable(
    State(state): State<ApiState>,
    query: Result<Query<ProviderQuery>, QueryRejection>,
) -> Result<Json<ProviderClaimableResponse>, ApiError> {
    let provider = match query?.0.provider.as_deref() {
        Some(text) if !text.trim().is_empty() => parse_address("provider", text)?,
        _ => state.signer()?.address(),
    };
    let chain = state.chain()?;
    let head = Head::latest(chain).await?;
    let limit = provider_limit(chain, head, provider).await?;
    let sessions = provider_claims(&state.store, chain, head, provider).await?;
    let sum = sessions.iter().fold(U256::ZERO, |acc, (_, claim)| acc.saturating_add(claim.amount));
    Ok(Json(ProviderClaimableResponse {
        provider: lower_address(&provider),
        total: sum.min(limit.remaining).into(),
        limit_remaining: limit.remaining.into(),
        sessions: sessions.iter().map(|(s, claim)| claimable_json(s, claim, limit.remaining)).collect(),
        now: head.timestamp,
    }))
}

/// Claims every session of this node's wallet (as provider) that has something claimable, oldest
/// first, at most [`MAX_CLAIMS_PER_CALL`] per call, until the earning limit is used up. Each session
/// is re-checked on chain before its claim. Stops at the first failure: the claims before it are
/// listed with the failure.
#[utoipa::path(
    post,
    path = "/proxy/sessions/provider-claim-all",
    tag = "sessions",
    operation_id = "claimAllProviderBalances",
    responses(
        (status = 200, description = "The mined claims (possibly none)", body = ClaimAllResponse),
        (status = 422, description = "The first claim reverted", body = ErrorBody),
        (status = 503, description = "No chain or no wallet", body = ErrorBody),
    )
)]
pub async fn provider_claim_all(State(state): State<ApiState>) -> Result<Json<ClaimAllResponse>, ApiError> {
    let chain = state.chain()?;
    let signer = state.signer()?;
    let provider = signer.address();
    let head = Head::latest(chain).await?;
    let mut remaining_limit = provider_limit(chain, head, provider).await?.remaining;
    let candidates: Vec<B256> = provider_claims(&state.store, chain, head, provider)
        .await?
        .into_iter()
        .filter(|(_, claim)| !claim.amount.is_zero())
        .map(|(s, _)| s.id)
        .collect();

    let mut answer =
        ClaimAllResponse { claims: Vec::new(), total: BigInt::default(), remaining: 0, failed: None };
    let mut tried = 0;
    for id in &candidates {
        if tried == MAX_CLAIMS_PER_CALL || remaining_limit.is_zero() {
            break;
        }
        tried += 1;
        match claim_one(chain, &signer, head, *id, remaining_limit).await {
            Ok(Some((tx, claimed))) => {
                remaining_limit = remaining_limit.saturating_sub(claimed);
                answer.total = BigInt(answer.total.0.saturating_add(claimed));
                answer.claims.push(ClaimJson { session_id: *id, tx, claimed: claimed.into() });
            }
            Ok(None) => {}
            Err(error) if answer.claims.is_empty() => return Err(error),
            Err(error) => {
                answer.failed = Some(FailedClaimJson { session_id: *id, error: error.body() });
                break;
            }
        }
    }
    answer.remaining = (candidates.len() - tried) as u64;
    Ok(Json(answer))
}

/// Claims one session if the chain (at `head`) says it has something claimable; `None` otherwise.
async fn claim_one(
    chain: &ChainAccess,
    signer: &Signer,
    head: Head,
    id: B256,
    limit: U256,
) -> Result<Option<(B256, U256)>, ApiError> {
    let Some((session, price)) = chain_session(chain, id, head.block_id()).await? else {
        return Ok(None);
    };
    if session_claim(&session, price, head.timestamp).amount.min(limit).is_zero() {
        return Ok(None);
    }
    let receipt = signer.sender.claim_for_provider(id).await?;
    Ok(Some((receipt.transaction_hash, transfers_to(&receipt, chain.mor_token, session.provider))))
}

pub(super) fn nothing_to_claim_reason(claim: &SessionClaim, limit: &ProviderLimit, now: u64) -> String {
    if now < claim.end {
        format!("the session's earnings are claimable from its end at {} (chain time now {now})", claim.end)
    } else if claim.rewards.is_zero() {
        "everything the session earned has been paid".to_owned()
    } else if claim.amount.is_zero() {
        format!("{} MOR wei of a disputed early close are held until {}", claim.on_hold, claim.on_hold_until)
    } else {
        format!(
            "the provider has been paid its whole stake in the current 365-day window, which ends at {}",
            limit.period_end
        )
    }
}
