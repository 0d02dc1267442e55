//! A user's on-hold stake: the entries the contract keeps until the next UTC day
//! (`/blockchain/sessions/user/stakes-on-hold`) and their withdrawal (`withdraw-stakes`).

use super::*;

/// A user's on-hold stake (locked by early closes until the next UTC day), entry by entry with its
/// release time, and the totals of `getUserStakesOnHold`.
#[utoipa::path(
    get,
    path = "/blockchain/sessions/user/stakes-on-hold",
    tag = "sessions",
    operation_id = "getUserStakesOnHold",
    params(("user" = Option<String>, Query, description = "The user (default: this node's wallet)")),
    responses(
        (status = 200, description = "On-hold entries and totals", body = StakesOnHoldResponse),
        (status = 400, description = "Invalid `user`", body = ErrorBody),
        (status = 502, description = "The diamond's storage does not match `getUserStakesOnHold` (`unexpected_contract_state`)", body = ErrorBody),
        (status = 503, description = "No chain, or no wallet and no `user`", body = ErrorBody),
    )
)]
pub async fn stakes_on_hold(
    State(state): State<ApiState>,
    query: Result<Query<UserQuery>, QueryRejection>,
) -> Result<Json<StakesOnHoldResponse>, ApiError> {
    let user = match query?.0.user.as_deref() {
        Some(text) if !text.trim().is_empty() => parse_address("user", text)?,
        _ => state.signer()?.address(),
    };
    let chain = state.chain()?;
    let head = Head::latest(chain).await?;
    Ok(Json(on_hold(chain, head, user).await?))
}

/// Withdraws this node's wallet's released on-hold stake (`withdrawUserStakes`); answers after the
/// receipt with the amount paid. 409 `nothing_to_withdraw` (with the next release time) when nothing
/// is released yet.
#[utoipa::path(
    post,
    path = "/blockchain/sessions/user/withdraw-stakes",
    tag = "sessions",
    operation_id = "withdrawUserStakes",
    request_body(content = Option<WithdrawRequest>, description = "Optional; `{}` or no body withdraws up to 255 entries", content_type = "application/json"),
    responses(
        (status = 200, description = "Mined `withdrawUserStakes`", body = WithdrawResponse),
        (status = 400, description = "Invalid `iterations` or body", body = ErrorBody),
        (status = 409, description = "Nothing released yet (`nothing_to_withdraw`)", body = ErrorBody),
        (status = 422, description = "The transaction reverted", body = ErrorBody),
        (status = 503, description = "No chain or no wallet", body = ErrorBody),
    )
)]
pub async fn withdraw_stakes(
    State(state): State<ApiState>,
    body: Result<Body, BytesRejection>,
) -> Result<Json<WithdrawResponse>, ApiError> {
    let request: WithdrawRequest = optional_json(body)?;
    let iterations = match request.iterations {
        None => u8::MAX,
        Some(0) => return Err(ApiError::bad_request("iterations", "must be at least 1")),
        Some(n) => n,
    };
    let chain = state.chain()?;
    let signer = state.signer()?;
    let user = signer.address();
    let head = Head::latest(chain).await?;
    let held = on_hold(chain, head, user).await?;
    if held.available.0.is_zero() {
        let reason = match held.next_release_at {
            Some(at) => format!("{} MOR wei are locked; the next part is released at {at}", held.locked.0),
            None => "the wallet has no on-hold stake".to_owned(),
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "nothing_to_withdraw",
            "no on-hold stake is released yet",
        )
        .with_reason(reason));
    }
    let receipt = signer.sender.withdraw_user_stakes(user, iterations).await?;
    let withdrawn = receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.address() == chain.diamond)
        .filter_map(|log| log.log_decode::<SessionRouter::UserWithdrawn>().ok())
        .fold(U256::ZERO, |acc, log| acc.saturating_add(log.inner.data.amount_));
    Ok(Json(WithdrawResponse { tx: receipt.transaction_hash, withdrawn: withdrawn.into() }))
}

/// Reads `user`'s on-hold entries from the diamond's storage at `head` and checks them against
/// `getUserStakesOnHold`.
async fn on_hold(chain: &ChainAccess, head: Head, user: Address) -> Result<StakesOnHoldResponse, ApiError> {
    let provider = chain.rpc.provider();
    let totals = SessionRouter::new(chain.diamond, provider)
        .getUserStakesOnHold(user, u8::MAX)
        .block(head.block_id())
        .call()
        .await
        .map_err(|e| ChainError::from_contract("getUserStakesOnHold", e))?;

    let (length_slot, first) = on_hold_slots(user);
    let read = |slot: U256| async move {
        provider
            .get_storage_at(chain.diamond, slot)
            .number(head.number)
            .await
            .map_err(|e| ApiError::from(ChainError::from_rpc("eth_getStorageAt", "on-hold entries", e)))
    };
    let length = read(length_slot).await?;
    let truncated = length > U256::from(MAX_ON_HOLD_ENTRIES);
    let count = if truncated { MAX_ON_HOLD_ENTRIES } else { length.to::<u64>() };
    let entries: Vec<(U256, U256)> = futures::stream::iter(0..count)
        .map(|i| {
            let amount_slot = first.wrapping_add(U256::from(2 * i));
            async move {
                let amount = read(amount_slot).await?;
                let release_at = read(amount_slot.wrapping_add(U256::from(1))).await?;
                Ok::<_, ApiError>((amount, release_at))
            }
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;

    let now = head.timestamp;
    let mut on_hold = Vec::with_capacity(entries.len());
    let (mut released_sum, mut locked_sum) = (U256::ZERO, U256::ZERO);
    let mut next_release_at: Option<u64> = None;
    for (amount, release_at) in entries {
        // `releaseAt` is a uint128 in the low half of its slot.
        let release_at = u64::try_from(release_at & U256::from(u128::MAX)).unwrap_or(u64::MAX);
        let released = now >= release_at;
        if released {
            released_sum = released_sum.saturating_add(amount);
        } else {
            locked_sum = locked_sum.saturating_add(amount);
            next_release_at = Some(next_release_at.map_or(release_at, |n| n.min(release_at)));
        }
        on_hold.push(OnHoldJson { amount: amount.into(), release_at, released });
    }
    if !truncated && (released_sum != totals.available_ || locked_sum != totals.hold_) {
        tracing::error!(
            %user, block = head.number, %released_sum, %locked_sum, available = %totals.available_,
            hold = %totals.hold_, "on-hold entries in storage do not add up to getUserStakesOnHold"
        );
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "unexpected_contract_state",
            "the diamond's on-hold entries do not match getUserStakesOnHold (unknown storage layout)",
        ));
    }
    Ok(StakesOnHoldResponse {
        user: lower_address(&user),
        on_hold,
        available: totals.available_.into(),
        locked: totals.hold_.into(),
        next_release_at,
        now,
        block: head.number,
        truncated,
    })
}
