//! The checks of the user routes: required fields, user names and permission lists that
//! `proxy.conf` can hold, who may change whom (see "Who may change whom" in [`super`]), the blocking
//! `proxy.conf` writes, and the transactions cursor.

use std::collections::BTreeMap;

use alloy::primitives::U256;
use axum::http::StatusCode;
use base64::Engine as _;

use super::MAX_USERNAME_LEN;
use crate::api::auth::{AuthError, Grant, ADMIN_USER};
use crate::api::{ApiError, ApiState, AuthStore};

/// A required field (missing, `null` or, for strings, blank: 400 naming it).
pub(super) fn required<T: Blank>(field: &str, value: Option<T>) -> Result<T, ApiError> {
    value.filter(|v| !v.is_blank()).ok_or_else(|| ApiError::bad_request(field, "required"))
}

pub(super) trait Blank {
    fn is_blank(&self) -> bool;
}

impl Blank for String {
    fn is_blank(&self) -> bool {
        self.trim().is_empty()
    }
}

impl<T> Blank for Vec<T> {
    fn is_blank(&self) -> bool {
        false
    }
}

impl<K, V> Blank for BTreeMap<K, V> {
    fn is_blank(&self) -> bool {
        false
    }
}

/// A user name that `proxy.conf` can hold: 1 to 128 characters, no whitespace or control characters,
/// no `:`, `$` or `,` (the reference's current rules).
pub(super) fn username(field: &str, value: Option<String>) -> Result<String, ApiError> {
    let name = required(field, value)?;
    if name.chars().count() > MAX_USERNAME_LEN {
        return Err(ApiError::bad_request(field, format!("at most {MAX_USERNAME_LEN} characters")));
    }
    if let Some(c) =
        name.chars().find(|c| c.is_whitespace() || c.is_control() || matches!(c, ':' | '$' | ','))
    {
        return Err(ApiError::bad_request(field, format!("must not contain {c:?}")));
    }
    Ok(name)
}

/// The whitelist of `perms`: `*` or the reference's permission names; 400 `perms` naming the first
/// unknown one.
pub(super) fn grants(perms: &[String]) -> Result<Vec<Grant>, ApiError> {
    let mut out = Vec::with_capacity(perms.len());
    for perm in perms {
        let grant: Grant = perm
            .parse()
            .map_err(|_| ApiError::bad_request("perms", format!("unknown permission {perm:?}")))?;
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    Ok(out)
}

/// 403 `forbidden_user_change`.
pub(super) fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden_user_change", message.into())
}

/// Whether `caller` holds every permission of `grants` (`*` is never delegated).
pub(super) fn dominates(auth: &AuthStore, caller: &str, grants: &[Grant]) -> Result<(), ApiError> {
    for grant in grants {
        let held = match grant {
            Grant::All => false,
            Grant::Only(p) => auth.allows(caller, *p),
        };
        if !held {
            return Err(forbidden(format!("{caller:?} cannot grant {grant}, which it does not hold")));
        }
    }
    Ok(())
}

/// Whether `caller` may create or change `target` with `grants` (`None`: remove it). See "Who may
/// change whom" in the module docs.
pub(super) async fn authorize_change(
    state: &ApiState,
    caller: &str,
    target: &str,
    grants: Option<&[Grant]>,
) -> Result<(), ApiError> {
    let auth = &state.auth;
    if auth.has_full_access(caller) {
        return Ok(());
    }
    if target == ADMIN_USER {
        return Err(forbidden("only a full-access user may change admin"));
    }
    if let Some(grants) = grants {
        if grants.is_empty() && auth.whitelist_default() {
            return Err(forbidden(
                "rpcwhitelistdefault=1 would leave this user unrestricted; list its permissions",
            ));
        }
        dominates(auth, caller, grants)?;
    }
    if auth.has_user(target) {
        if auth.has_full_access(target) {
            return Err(forbidden(format!("{target:?} has full access")));
        }
        let current: Vec<Grant> = auth
            .whitelist(target)
            .unwrap_or_default()
            .iter()
            .map(|t| t.parse().unwrap_or(Grant::All))
            .collect();
        dominates(auth, caller, &current)?;
    }
    let allowances = state.store.agents().allowances(target).await?;
    if allowances.values().any(|a| *a > U256::ZERO) {
        return Err(forbidden(format!("{target:?} has spending allowances")));
    }
    Ok(())
}

/// Runs blocking `proxy.conf` I/O off the async workers.
pub(super) async fn blocking(
    f: impl FnOnce() -> Result<(), AuthError> + Send + 'static,
) -> Result<(), ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal("auth file task", &e)),
    }
}

pub(super) fn encode_cursor(seq: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(seq.to_be_bytes())
}

pub(super) fn decode_cursor(text: &str) -> Result<u64, ApiError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    // A `+` that was not URL-encoded arrives as a space.
    let text = text.replace(' ', "+");
    let bytes = STANDARD
        .decode(&text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .map_err(|_| ApiError::bad_request("cursor", "not a cursor from this node"))?;
    let bytes: [u8; 8] =
        bytes.try_into().map_err(|_| ApiError::bad_request("cursor", "not a cursor from this node"))?;
    Ok(u64::from_be_bytes(bytes))
}
