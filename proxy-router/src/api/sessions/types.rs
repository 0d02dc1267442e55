//! The JSON of the session routes: the reference's PascalCase session objects and our answers.

use super::*;
/// `{"session": Session}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The session with its bid's price.
    pub session: SessionJson,
}

/// `{"sessions": [Session]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionsResponse {
    /// One page of sessions.
    pub sessions: Vec<SessionJson>,
}

/// `{"budget": "int"}`: `getTodaysBudget(now)`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BudgetResponse {
    /// Today's compute budget, MOR wei.
    pub budget: BigInt,
}

/// `{"supply": "int"}`: `totalMORSupply(now)`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SupplyResponse {
    /// The MOR supply the stipend formula uses, wei.
    pub supply: BigInt,
}

/// `{"balance": "int"}`: what `claimForProvider` would pay now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BalanceResponse {
    /// MOR wei.
    pub balance: BigInt,
}

/// `{"tx", "claimed"}`: a mined `claimForProvider`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimResponse {
    /// Transaction hash.
    #[schema(value_type = String)]
    pub tx: B256,
    /// MOR wei the provider received in that transaction.
    pub claimed: BigInt,
}

/// A user's on-hold stake: what an early close locked until the next UTC day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StakesOnHoldResponse {
    /// The user (lower-case hex).
    pub user: String,
    /// Every on-hold entry in storage order (the order `withdrawUserStakes` walks backwards).
    pub on_hold: Vec<OnHoldJson>,
    /// Released and withdrawable now, MOR wei (`getUserStakesOnHold().available_`).
    pub available: BigInt,
    /// Still locked, MOR wei (`getUserStakesOnHold().hold_`).
    pub locked: BigInt,
    /// The earliest release time of a locked entry, unix seconds; null when nothing is locked.
    pub next_release_at: Option<u64>,
    /// The chain time the answer is for (the latest block's timestamp).
    pub now: u64,
    /// The block the answer was read at.
    pub block: u64,
    /// More than [`MAX_ON_HOLD_ENTRIES`] entries exist; only the first ones are listed (the totals are
    /// complete).
    pub truncated: bool,
}

/// One on-hold entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnHoldJson {
    /// MOR wei.
    pub amount: BigInt,
    /// When it is released, unix seconds (the start of the UTC day after the close).
    pub release_at: u64,
    /// `now >= releaseAt`: withdrawable.
    pub released: bool,
}

/// Body of `POST /blockchain/sessions/user/withdraw-stakes` (optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    /// At most this many released entries are withdrawn (1–255, default 255).
    pub iterations: Option<u8>,
}

/// `{"tx", "withdrawn"}`: a mined `withdrawUserStakes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WithdrawResponse {
    /// Transaction hash.
    #[schema(value_type = String)]
    pub tx: B256,
    /// MOR wei paid to the user (the `UserWithdrawn` event).
    pub withdrawn: BigInt,
}

/// A provider's earnings still to claim, per session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderClaimableResponse {
    /// The provider (lower-case hex).
    pub provider: String,
    /// What claiming every listed session now would pay in total: the sum of `claimable`, capped by
    /// `limitRemaining`.
    pub total: BigInt,
    /// What the provider may still earn in its current 365-day window (its stake minus what it earned
    /// in the window); every claim is capped by it.
    pub limit_remaining: BigInt,
    /// Sessions with something claimable now, held, or still to come (open or not ended), oldest first.
    pub sessions: Vec<ClaimableSessionJson>,
    /// The chain time the answer is for (the latest block's timestamp).
    pub now: u64,
}

/// One session in [`ProviderClaimableResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimableSessionJson {
    /// Session id.
    #[schema(value_type = String)]
    pub session_id: B256,
    /// The session's user (lower-case hex).
    pub user: String,
    /// What `claimForProvider` would pay now, MOR wei (capped by `limitRemaining`).
    pub claimable: BigInt,
    /// The part of a disputed early close withheld until `onHoldUntil`, MOR wei.
    pub on_hold: BigInt,
    /// When `onHold` is released, unix seconds; null when nothing is held.
    pub on_hold_until: Option<u64>,
    /// When the session's earnings become claimable: its end (`min(closedAt, endsAt)`, or `endsAt`
    /// while open).
    pub claimable_from: u64,
    /// Already paid to the provider, MOR wei.
    pub withdrawn: BigInt,
    /// Opening time.
    pub opened_at: u64,
    /// Planned end.
    pub ends_at: u64,
    /// Closing time, 0 while open.
    pub closed_at: u64,
}

/// What `provider-claim-all` did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimAllResponse {
    /// The mined claims, in order.
    pub claims: Vec<ClaimJson>,
    /// MOR wei received over all claims.
    pub total: BigInt,
    /// Sessions with something claimable that this call did not try (at most
    /// [`MAX_CLAIMS_PER_CALL`] per call); call again.
    pub remaining: u64,
    /// The claim that failed, when one did (the calls before it were mined; the call stopped there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<FailedClaimJson>,
}

/// One mined claim.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimJson {
    /// Session id.
    #[schema(value_type = String)]
    pub session_id: B256,
    /// Transaction hash.
    #[schema(value_type = String)]
    pub tx: B256,
    /// MOR wei received.
    pub claimed: BigInt,
}

/// A claim that failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedClaimJson {
    /// Session id.
    #[schema(value_type = String)]
    pub session_id: B256,
    /// Why.
    pub error: ErrorBody,
}

/// `?user=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// The user's address.
    #[param(value_type = Option<String>, example = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266")]
    pub user: Option<String>,
}

/// `?provider=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderQuery {
    /// The provider's address.
    #[param(value_type = Option<String>, example = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8")]
    pub provider: Option<String>,
}
