//! API authentication, compatible with the reference router (`internal/system/auth.go`).
//!
//! This module owns the two auth files and the check every protected route runs:
//!
//! - **`proxy.conf`** ([`AuthConfig::auth_config_file_path`], `AUTH_CONFIG_FILE_PATH`): bitcoind-style
//!   lines `rpcauth=<user>:<saltHex>$<hashHex>` where hash = HMAC-SHA256(key = the salt's **bytes**,
//!   message = the password), `rpcwhitelist=<user>:<perm>,<perm>` (`*` = every permission) and
//!   `rpcwhitelistdefault=0|1` (what a user without a whitelist line may do). Comments (`#`) and blank
//!   lines are kept in place when the file is rewritten; any other line is refused at start with its line
//!   number (the reference silently ignores it, so a typo such as `rpcwhitlist=` would drop a restriction).
//!   Whitelist entries that name no permission this build knows are kept and only logged.
//! - **`.cookie`** ([`AuthConfig::cookie_file_path`], `COOKIE_FILE_PATH`): one line `admin:<password>`.
//!   When it is missing it is written from `COOKIE_CONTENT` verbatim, or as `admin:<32 random
//!   [0-9A-Za-z]>`, and `admin` is added to `proxy.conf` with the whitelist `*`.
//!
//! Both files are written atomically (temporary file in the same directory, then rename) with mode 0600;
//! an existing file that group or others may read or write is reported with a warning, as the reference
//! does. [`AuthStore`] holds the parsed `proxy.conf` behind an `Arc<RwLock<…>>`: cheap to clone, read on
//! every request, rewritten by [`AuthStore::add_user`] and [`AuthStore::remove_user`].
//!
//! HTTP: [`require`] (or [`AuthStore::require`]) is a tower layer for one route or router. It reads
//! `Authorization: Basic …`, verifies the password (constant-time HMAC comparison) and the user's whitelist,
//! stores the [`Principal`] in the request extensions (handlers extract it), and otherwise answers with the
//! reference's bodies: 401 `{"error":"no basic auth provided"}`, `{"error":"invalid basic auth provided"}`
//! or `{"error":"invalid username or password"}` (plus a `WWW-Authenticate` header the reference lacks), and
//! 403 `{"error":"method not allowed"}`. Open routes simply do not use the layer.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use futures::future::BoxFuture;
use hmac::{KeyInit as _, Mac as _};
use rand::RngExt as _;
use secrecy::{ExposeSecret, SecretString};

pub use crate::config::vars::{AUTH_CONFIG_FILE_PATH, COOKIE_CONTENT, COOKIE_FILE_PATH};
pub use crate::config::{DEFAULT_AUTH_CONFIG_FILE_PATH, DEFAULT_COOKIE_FILE_PATH};
/// The user the `.cookie` file holds; it gets the whitelist `*`.
pub const ADMIN_USER: &str = "admin";
/// The `WWW-Authenticate` value sent with every 401 (the reference sends none; browsers and curl like it).
pub const WWW_AUTHENTICATE_VALUE: &str = "Basic realm=\"proxy-router\"";

/// Length of a generated admin password (the reference's).
const GENERATED_PASSWORD_LEN: usize = 32;
/// Length of a generated salt in bytes (the reference's).
const SALT_LEN: usize = 16;
/// Length of an HMAC-SHA256 tag.
const HASH_LEN: usize = 32;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Everything that can go wrong in authentication: configuration, the auth files, user management, and
/// the rejections of a request (which answer 401 or 403, see [`IntoResponse`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// An auth variable has a value that cannot be used.
    #[error("{var}: {reason}")]
    InvalidVar {
        /// The variable.
        var: &'static str,
        /// What is wrong with it (never the value: `COOKIE_CONTENT` holds a password).
        reason: &'static str,
    },
    /// An auth file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of `proxy.conf` does not parse. The line itself is not echoed.
    #[error("{}: line {line}: {reason}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The `.cookie` file is not `user:password`.
    #[error("{}: expected one line user:password with both parts non-empty", path.display())]
    BadCookie {
        /// The file.
        path: PathBuf,
    },
    /// A user name given to [`AuthStore::add_user`] cannot be stored.
    #[error("invalid username: {0}")]
    InvalidUsername(&'static str),
    /// A password given to [`AuthStore::add_user`] cannot be stored.
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    /// A permission name that this build does not know.
    #[error("unknown permission {0:?}")]
    UnknownPermission(String),
    /// [`AuthStore::remove_user`] was asked to remove `admin`, which would leave nobody able to manage users.
    #[error("the admin user cannot be removed")]
    AdminRemoval,
    /// [`AuthStore::remove_user`] was asked to remove a user that does not exist.
    #[error("user {0:?} not found")]
    UnknownUser(String),
    /// The request has no `Authorization` header (401).
    #[error("no basic auth provided")]
    MissingCredentials,
    /// The `Authorization` header is not `Basic base64(user:password)` with both parts non-empty (401).
    #[error("invalid basic auth provided")]
    MalformedCredentials,
    /// Unknown user or wrong password (401).
    #[error("invalid username or password")]
    BadCredentials,
    /// The user's whitelist lacks the permission (403).
    #[error("method not allowed")]
    Forbidden {
        /// The permission the route requires.
        permission: Permission,
    },
}

impl AuthError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::MalformedCredentials | Self::BadCredentials => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::InvalidUsername(_)
            | Self::InvalidPassword(_)
            | Self::UnknownPermission(_)
            | Self::AdminRemoval
            | Self::UnknownUser(_) => StatusCode::BAD_REQUEST,
            Self::InvalidVar { .. } | Self::Io { .. } | Self::Syntax { .. } | Self::BadCookie { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// The reference's error body: `{"error":"<message>"}`. 5xx answers never carry file paths or I/O errors.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "auth store failure");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(WWW_AUTHENTICATE_VALUE));
        }
        response
    }
}

// ---------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------

/// Where the auth files live, and the optional seed of `.cookie` (the reference's variables).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `AUTH_CONFIG_FILE_PATH`, default `./proxy.conf`.
    pub auth_config_file_path: PathBuf,
    /// `COOKIE_FILE_PATH`, default `./.cookie`.
    pub cookie_file_path: PathBuf,
    /// `COOKIE_CONTENT`: written verbatim to a missing `.cookie`. Must be `admin:<password>`.
    pub cookie_content: Option<SecretString>,
}

impl AuthConfig {
    /// The auth files of the node's validated configuration, checked as [`AuthConfig::from_env`] does.
    pub fn from_web(web: &crate::config::WebConfig) -> Result<Self, AuthError> {
        let mut env = HashMap::new();
        env.insert(AUTH_CONFIG_FILE_PATH.to_owned(), web.auth_config_file_path.display().to_string());
        env.insert(COOKIE_FILE_PATH.to_owned(), web.cookie_file_path.display().to_string());
        if let Some(content) = &web.cookie_content {
            env.insert(COOKIE_CONTENT.to_owned(), content.expose_secret().to_owned());
        }
        Self::from_env(&env)
    }

    /// Reads and validates the three variables from an environment map. Unset or empty means the default.
    ///
    /// `COOKIE_CONTENT` must be `admin:<password>` (trailing whitespace ignored, password without control
    /// characters): the reference accepts any `user:password` but then stores the password for `admin`,
    /// so a cookie naming another user never works.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self, AuthError> {
        let get = |var: &str| env.get(var).map(String::as_str).filter(|v| !v.is_empty());
        let auth_config_file_path =
            file_path(AUTH_CONFIG_FILE_PATH, get(AUTH_CONFIG_FILE_PATH), DEFAULT_AUTH_CONFIG_FILE_PATH)?;
        let cookie_file_path = file_path(COOKIE_FILE_PATH, get(COOKIE_FILE_PATH), DEFAULT_COOKIE_FILE_PATH)?;
        if auth_config_file_path == cookie_file_path {
            return Err(AuthError::InvalidVar {
                var: COOKIE_FILE_PATH,
                reason: "must differ from AUTH_CONFIG_FILE_PATH",
            });
        }
        let cookie_content = match get(COOKIE_CONTENT) {
            None => None,
            Some(content) => {
                let (user, password) = split_cookie(content).ok_or(AuthError::InvalidVar {
                    var: COOKIE_CONTENT,
                    reason: "expected admin:<password> with a non-empty password",
                })?;
                if user != ADMIN_USER {
                    return Err(AuthError::InvalidVar {
                        var: COOKIE_CONTENT,
                        reason: "the user must be admin (expected admin:<password>)",
                    });
                }
                check_password(password).map_err(|_| AuthError::InvalidVar {
                    var: COOKIE_CONTENT,
                    reason: "the password must not contain control characters",
                })?;
                Some(SecretString::from(content.to_owned()))
            }
        };
        Ok(Self { auth_config_file_path, cookie_file_path, cookie_content })
    }
}

fn file_path(var: &'static str, value: Option<&str>, default: &str) -> Result<PathBuf, AuthError> {
    let value = value.unwrap_or(default);
    if value.ends_with('/') || value.ends_with(std::path::MAIN_SEPARATOR) {
        return Err(AuthError::InvalidVar { var, reason: "must name a file, not a directory" });
    }
    if value.contains('\0') {
        return Err(AuthError::InvalidVar { var, reason: "must not contain a NUL byte" });
    }
    Ok(PathBuf::from(value))
}

/// Splits `user:password` after trimming surrounding whitespace (as the reference reads `.cookie`).
fn split_cookie(content: &str) -> Option<(&str, &str)> {
    let (user, password) = content.trim().split_once(':')?;
    (!user.is_empty() && !password.is_empty()).then_some((user, password))
}

// ---------------------------------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------------------------------

macro_rules! permissions {
    ($($variant:ident => $name:literal,)*) => {
        /// A permission a route requires; the names are the reference's (`CheckAuth("<name>")`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Permission {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Permission {
            /// Every permission, in the reference's alphabetical order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The name used in `rpcwhitelist` lines and `POST /auth/users` bodies.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }
        }

        impl FromStr for Permission {
            type Err = AuthError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Permission::$variant),)*
                    _ => Err(AuthError::UnknownPermission(s.to_owned())),
                }
            }
        }
    };
}

permissions! {
    AddUser => "add_user",
    AgentRequests => "agent_requests",
    Approve => "approve",
    AudioSpeech => "audio_speech",
    AudioTranscription => "audio_transcription",
    CallAgentTool => "call_agent_tool",
    Chat => "chat",
    CloseSession => "close_session",
    CreateBid => "create_bid",
    CreateModel => "create_model",
    CreateProvider => "create_provider",
    DeleteBids => "delete_bids",
    DeleteModel => "delete_model",
    DeleteProvider => "delete_provider",
    DockerBuild => "docker_build",
    DockerManage => "docker_manage",
    DockerVersion => "docker_version",
    EditChatHistory => "edit_chat_history",
    Embeddings => "embeddings",
    GetAgentTools => "get_agent_tools",
    GetAllowance => "get_allowance",
    GetBalance => "get_balance",
    GetBids => "get_bids",
    GetBudget => "get_budget",
    GetChatHistory => "get_chat_history",
    GetLatestBlock => "get_latest_block",
    GetLocalAgents => "get_local_agents",
    GetLocalModels => "get_local_models",
    GetModels => "get_models",
    GetProviders => "get_providers",
    GetSessions => "get_sessions",
    GetSupply => "get_supply",
    GetTransactions => "get_transactions",
    GetWallet => "get_wallet",
    InitiateSession => "initiate_session",
    IpfsAdd => "ipfs_add",
    IpfsGet => "ipfs_get",
    IpfsPin => "ipfs_pin",
    IpfsPinned => "ipfs_pinned",
    IpfsUnpin => "ipfs_unpin",
    IpfsVersion => "ipfs_version",
    OpenSession => "open_session",
    RemoveUser => "remove_user",
    RemoveWallet => "remove_wallet",
    RequestAllowance => "request_allowance",
    SendEth => "send_eth",
    SendMor => "send_mor",
    SessionProviderClaim => "session_provider_claim",
    SetWallet => "set_wallet",
    SystemConfig => "system_config",
    WithdrawUserStakes => "withdraw_user_stakes",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a whitelist given to [`AuthStore::add_user`]: `*` or a known permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// `*`: every permission.
    All,
    /// One permission.
    Only(Permission),
}

impl Grant {
    /// The whitelist token (`*` or the permission name).
    pub const fn as_str(self) -> &'static str {
        match self {
            Grant::All => "*",
            Grant::Only(p) => p.as_str(),
        }
    }
}

impl FromStr for Grant {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            Ok(Grant::All)
        } else {
            s.parse().map(Grant::Only)
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------------
// proxy.conf: parse and render, keeping comments in place
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Line {
    /// A comment or a blank line, kept as written.
    Verbatim(String),
    Auth {
        user: String,
        salt: Vec<u8>,
        hash: [u8; HASH_LEN],
    },
    Whitelist {
        user: String,
        tokens: Vec<String>,
    },
    Default(bool),
}

/// The parsed `proxy.conf`. For repeated lines the last one wins (as the reference's maps).
#[derive(Debug, Clone, Default)]
struct AuthFile {
    lines: Vec<Line>,
}

impl AuthFile {
    fn parse(text: &str, path: &Path) -> Result<Self, AuthError> {
        let mut lines = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let syntax = |reason: &str| AuthError::Syntax {
                path: path.to_path_buf(),
                line: index + 1,
                reason: reason.to_owned(),
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                lines.push(Line::Verbatim(raw.to_owned()));
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| syntax("expected key=value"))?;
            let parsed = match key {
                "rpcauth" => {
                    let (user, salt_hash) = value
                        .split_once(':')
                        .filter(|(user, _)| !user.is_empty())
                        .ok_or_else(|| syntax("expected rpcauth=<user>:<salt>$<hash>"))?;
                    let (salt, hash) = salt_hash
                        .split_once('$')
                        .ok_or_else(|| syntax("expected rpcauth=<user>:<salt>$<hash>"))?;
                    let salt = hex::decode(salt).map_err(|_| syntax("the salt is not hex"))?;
                    let hash = hex::decode(hash)
                        .ok()
                        .and_then(|h| <[u8; HASH_LEN]>::try_from(h).ok())
                        .ok_or_else(|| syntax("the hash is not 32 bytes of hex"))?;
                    Line::Auth { user: user.to_owned(), salt, hash }
                }
                "rpcwhitelist" => {
                    let (user, list) = value
                        .split_once(':')
                        .filter(|(user, _)| !user.is_empty())
                        .ok_or_else(|| syntax("expected rpcwhitelist=<user>:<perm>,<perm>"))?;
                    let tokens: Vec<String> =
                        list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
                    for token in tokens.iter().filter(|t| t.parse::<Grant>().is_err()) {
                        tracing::warn!(
                            file = %path.display(),
                            line = index + 1,
                            user,
                            permission = %token,
                            "unknown permission in rpcwhitelist: it grants nothing"
                        );
                    }
                    Line::Whitelist { user: user.to_owned(), tokens }
                }
                "rpcwhitelistdefault" => Line::Default(
                    parse_go_bool(value).ok_or_else(|| syntax("rpcwhitelistdefault must be 0 or 1"))?,
                ),
                _ => {
                    return Err(syntax(
                        "unknown key: proxy.conf holds only rpcauth=, rpcwhitelist=, rpcwhitelistdefault=, \
                         comments (#) and blank lines",
                    ))
                }
            };
            lines.push(parsed);
        }
        Ok(Self { lines })
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Verbatim(text) => out.push_str(text),
                Line::Auth { user, salt, hash } => {
                    out.push_str(&format!("rpcauth={user}:{}${}", hex::encode(salt), hex::encode(hash)));
                }
                Line::Whitelist { user, tokens } => {
                    out.push_str(&format!("rpcwhitelist={user}:{}", tokens.join(",")));
                }
                Line::Default(on) => {
                    out.push_str(if *on { "rpcwhitelistdefault=1" } else { "rpcwhitelistdefault=0" })
                }
            }
            out.push('\n');
        }
        out
    }

    fn credential(&self, user: &str) -> Option<(&[u8], &[u8; HASH_LEN])> {
        self.lines.iter().rev().find_map(|line| match line {
            Line::Auth { user: u, salt, hash } if u == user => Some((salt.as_slice(), hash)),
            _ => None,
        })
    }

    fn whitelist(&self, user: &str) -> Option<&[String]> {
        self.lines.iter().rev().find_map(|line| match line {
            Line::Whitelist { user: u, tokens } if u == user => Some(tokens.as_slice()),
            _ => None,
        })
    }

    fn whitelist_default(&self) -> bool {
        self.lines
            .iter()
            .rev()
            .find_map(|line| match line {
                Line::Default(on) => Some(*on),
                _ => None,
            })
            .unwrap_or(false)
    }

    /// The reference's `IsMethodAllowed`: known user, then the whitelist (`*` or the name), else the default.
    fn allows(&self, user: &str, permission: Permission) -> bool {
        if self.credential(user).is_none() {
            return false;
        }
        match self.whitelist(user) {
            Some(tokens) => tokens.iter().any(|t| t == "*" || t == permission.as_str()),
            None => self.whitelist_default(),
        }
    }

    /// Replaces the user's first line of each kind in place (dropping repeats) or appends new ones.
    fn upsert(&mut self, user: &str, salt: Vec<u8>, hash: [u8; HASH_LEN], grants: &[Grant]) {
        let auth = Line::Auth { user: user.to_owned(), salt, hash };
        self.replace_or_push(auth, |l| matches!(l, Line::Auth { user: u, .. } if u == user));
        let is_whitelist = |l: &Line| matches!(l, Line::Whitelist { user: u, .. } if u == user);
        if grants.is_empty() {
            self.lines.retain(|l| !is_whitelist(l));
        } else {
            let tokens = grants.iter().map(|g| g.as_str().to_owned()).collect();
            self.replace_or_push(Line::Whitelist { user: user.to_owned(), tokens }, is_whitelist);
        }
        self.ensure_default_line();
    }

    fn replace_or_push(&mut self, new: Line, matches: impl Fn(&Line) -> bool) {
        match self.lines.iter().position(&matches) {
            Some(first) => {
                self.lines[first] = new;
                let mut index = 0;
                self.lines.retain(|l| {
                    index += 1;
                    index - 1 == first || !matches(l)
                });
            }
            None => self.lines.push(new),
        }
    }

    fn remove(&mut self, user: &str) -> bool {
        let before = self.lines.len();
        self.lines.retain(
            |l| !matches!(l, Line::Auth { user: u, .. } | Line::Whitelist { user: u, .. } if u == user),
        );
        self.ensure_default_line();
        self.lines.len() != before
    }

    /// The reference always writes `rpcwhitelistdefault`; so do we, keeping the current value.
    fn ensure_default_line(&mut self) {
        if !self.lines.iter().any(|l| matches!(l, Line::Default(_))) {
            self.lines.push(Line::Default(false));
        }
    }
}

/// Go's `strconv.ParseBool` (the reference accepts it, plus `0`/`1`).
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// HMAC-SHA256 keyed with the salt's bytes over the password (the reference's rpcauth hash).
fn hmac_for(salt: &[u8], password: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails; an empty key is the fallback for the type.
    let mut mac = HmacSha256::new_from_slice(salt).unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    mac.update(password.as_bytes());
    mac
}

/// The hex HMAC the reference stores for `salt` and `password`.
pub fn rpcauth_hash_hex(salt: &[u8], password: &str) -> String {
    hex::encode(hmac_for(salt, password).finalize().into_bytes())
}

/// The `proxy.conf` credential of `password`, `saltHex$hashHex` with a fresh salt: what
/// [`AuthStore::add_user_with_credential`] takes, so a password need not be kept until it is used.
pub fn rpcauth_credential(password: &str) -> Result<String, AuthError> {
    check_password(password)?;
    let salt = random_salt();
    Ok(format!("{}${}", hex::encode(&salt), rpcauth_hash_hex(&salt, password)))
}

fn parse_credential(credential: &str) -> Option<(Vec<u8>, [u8; HASH_LEN])> {
    let (salt, hash) = credential.split_once('$')?;
    let salt = hex::decode(salt).ok().filter(|s| !s.is_empty())?;
    let hash = <[u8; HASH_LEN]>::try_from(hex::decode(hash).ok()?).ok()?;
    Some((salt, hash))
}

fn check_username(user: &str) -> Result<(), AuthError> {
    if user.is_empty() {
        return Err(AuthError::InvalidUsername("must not be empty"));
    }
    if user.contains(':') {
        return Err(AuthError::InvalidUsername("must not contain ':'"));
    }
    if user.chars().any(char::is_control) || user.trim() != user {
        return Err(AuthError::InvalidUsername("must not contain control characters or surrounding spaces"));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), AuthError> {
    if password.is_empty() {
        return Err(AuthError::InvalidPassword("must not be empty"));
    }
    if password.chars().any(char::is_control) {
        return Err(AuthError::InvalidPassword("must not contain control characters"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------------

/// Writes `contents` to `path` atomically: a temporary file (mode 0600) in the same directory, synced,
/// then renamed over `path`.
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), AuthError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| AuthError::io(path, e))?;
    set_private_mode(file.as_file()).map_err(|e| AuthError::io(path, e))?;
    file.write_all(contents.as_bytes()).map_err(|e| AuthError::io(path, e))?;
    file.as_file().sync_all().map_err(|e| AuthError::io(path, e))?;
    file.persist(path).map_err(|e| AuthError::io(path, e.error))?;
    Ok(())
}

#[cfg(unix)]
fn set_private_mode(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private_mode(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

/// The permission bits of `path` when group or others may access it (the reference wants 0600).
#[cfg(unix)]
fn loose_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_path: &Path) -> Option<u32> {
    None
}

fn warn_if_loose(path: &Path) {
    if let Some(mode) = loose_mode(path) {
        tracing::warn!(
            file = %path.display(),
            mode = format_args!("{mode:o}"),
            "auth file is accessible by group or others; run chmod 600 on it"
        );
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, AuthError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuthError::io(path, e)),
    }
}

fn random_salt() -> Vec<u8> {
    let mut salt = vec![0u8; SALT_LEN];
    rand::rng().fill(&mut salt[..]);
    salt
}

fn random_password() -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(GENERATED_PASSWORD_LEN).map(char::from).collect()
}

// ---------------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------------

/// An authenticated user, stored in the request extensions by [`require`]; handlers extract it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    user: String,
}

impl Principal {
    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether this is the `.cookie` admin (the reference exempts it from agent allowances).
    pub fn is_admin(&self) -> bool {
        self.user == ADMIN_USER
    }
}

/// Missing when the route has no [`require`] layer: that is a wiring bug, answered as 401.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or(AuthError::MissingCredentials)
    }
}

struct Shared {
    conf_path: PathBuf,
    cookie_path: PathBuf,
    file: RwLock<AuthFile>,
}

/// The users of `proxy.conf`, shared by every request. Cloning is cheap (one `Arc`).
///
/// [`AuthStore::add_user`] and [`AuthStore::remove_user`] do blocking file I/O on a small file; call them
/// from `tokio::task::spawn_blocking` in async handlers if that matters.
#[derive(Clone)]
pub struct AuthStore {
    shared: Arc<Shared>,
}

/// Shows the paths only: salts and hashes stay out of logs.
impl fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthStore")
            .field("conf_path", &self.shared.conf_path)
            .field("cookie_path", &self.shared.cookie_path)
            .finish_non_exhaustive()
    }
}

impl AuthStore {
    /// Loads `proxy.conf` and makes sure `.cookie` exists, as the reference does at start:
    ///
    /// - a missing `.cookie` is written (mode 0600) from `COOKIE_CONTENT` or as `admin:<32 random
    ///   alphanumerics>`, and `admin` is added to `proxy.conf` with that password and the whitelist `*`;
    /// - an existing `.cookie` with no `proxy.conf` adds the cookie's user with the whitelist `*`;
    /// - an existing file readable by group or others is reported with a warning.
    ///
    /// Blocking (file I/O); call it at start-up.
    pub fn open(config: &AuthConfig) -> Result<Self, AuthError> {
        let conf_path = config.auth_config_file_path.clone();
        let cookie_path = config.cookie_file_path.clone();
        let conf_text = read_optional(&conf_path)?;
        if conf_text.is_some() {
            warn_if_loose(&conf_path);
        }
        let mut file = match &conf_text {
            Some(text) => AuthFile::parse(text, &conf_path)?,
            None => AuthFile::default(),
        };
        let cookie_text = read_optional(&cookie_path)?;
        let seed = match &cookie_text {
            None => {
                let (content, password) = match &config.cookie_content {
                    Some(content) => {
                        let content = content.expose_secret();
                        let (_, password) = split_cookie(content).ok_or(AuthError::InvalidVar {
                            var: COOKIE_CONTENT,
                            reason: "expected admin:<password>",
                        })?;
                        (content.to_owned(), password.to_owned())
                    }
                    None => {
                        let password = random_password();
                        (format!("{ADMIN_USER}:{password}\n"), password)
                    }
                };
                write_private(&cookie_path, &content)?;
                tracing::info!(file = %cookie_path.display(), "created the admin cookie file");
                Some((ADMIN_USER.to_owned(), password))
            }
            Some(text) => {
                warn_if_loose(&cookie_path);
                if conf_text.is_none() {
                    let (user, password) = split_cookie(text)
                        .ok_or_else(|| AuthError::BadCookie { path: cookie_path.clone() })?;
                    Some((user.to_owned(), password.to_owned()))
                } else {
                    None
                }
            }
        };
        if let Some((user, password)) = seed {
            let salt = random_salt();
            let hash = hmac_for(&salt, &password).finalize().into_bytes().into();
            file.upsert(&user, salt, hash, &[Grant::All]);
            write_private(&conf_path, &file.render())?;
        }
        Ok(Self { shared: Arc::new(Shared { conf_path, cookie_path, file: RwLock::new(file) }) })
    }

    fn read(&self) -> RwLockReadGuard<'_, AuthFile> {
        self.shared.file.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, AuthFile> {
        self.shared.file.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `proxy.conf` path.
    pub fn conf_path(&self) -> &Path {
        &self.shared.conf_path
    }

    /// The `.cookie` path (for `GET /auth/cookie/path`).
    pub fn cookie_path(&self) -> &Path {
        &self.shared.cookie_path
    }

    /// Checks a user's password: HMAC-SHA256 keyed with the stored salt, compared in constant time. An
    /// unknown user costs the same HMAC, so timing does not reveal which users exist.
    pub fn verify(&self, user: &str, password: &str) -> Result<Principal, AuthError> {
        let file = self.read();
        match file.credential(user) {
            Some((salt, hash)) => hmac_for(salt, password)
                .verify_slice(hash)
                .map(|()| Principal { user: user.to_owned() })
                .map_err(|_| AuthError::BadCredentials),
            None => {
                let _ = hmac_for(&[0u8; SALT_LEN], password).verify_slice(&[0u8; HASH_LEN]);
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// Whether the principal's whitelist (or `rpcwhitelistdefault` when it has none) allows the permission.
    /// A user removed since it was verified is refused.
    pub fn check(&self, principal: &Principal, permission: Permission) -> Result<(), AuthError> {
        if self.read().allows(&principal.user, permission) {
            Ok(())
        } else {
            Err(AuthError::Forbidden { permission })
        }
    }

    /// The whole check of one request, in the reference's order: header present, Basic and well formed,
    /// password, permission.
    pub fn authorize(&self, headers: &HeaderMap, permission: Permission) -> Result<Principal, AuthError> {
        let value =
            headers.get(AUTHORIZATION).filter(|v| !v.is_empty()).ok_or(AuthError::MissingCredentials)?;
        let (user, password) = parse_basic(value).ok_or(AuthError::MalformedCredentials)?;
        let principal = self.verify(&user, &password)?;
        self.check(&principal, permission)?;
        Ok(principal)
    }

    /// Adds or replaces a user with a fresh salt; `grants` becomes its whitelist (empty = no whitelist line,
    /// so `rpcwhitelistdefault` applies). For `admin` the `.cookie` file is rewritten too, as the
    /// reference's `POST /auth/users` does. `proxy.conf` is rewritten atomically before memory changes.
    pub fn add_user(&self, user: &str, password: &str, grants: &[Grant]) -> Result<(), AuthError> {
        check_username(user)?;
        check_password(password)?;
        let salt = random_salt();
        let hash = hmac_for(&salt, password).finalize().into_bytes().into();
        let mut guard = self.write();
        let mut next = guard.clone();
        next.upsert(user, salt, hash, grants);
        write_private(&self.shared.conf_path, &next.render())?;
        *guard = next;
        drop(guard);
        if user == ADMIN_USER {
            write_private(&self.shared.cookie_path, &format!("{ADMIN_USER}:{password}\n"))?;
        }
        Ok(())
    }

    /// Adds or replaces a user from a stored credential `saltHex$hashHex` (made by [`rpcauth_credential`])
    /// instead of a password, as [`AuthStore::add_user`] does otherwise. `admin` is refused: its password
    /// must reach `.cookie`.
    pub fn add_user_with_credential(
        &self,
        user: &str,
        credential: &str,
        grants: &[Grant],
    ) -> Result<(), AuthError> {
        check_username(user)?;
        if user == ADMIN_USER {
            return Err(AuthError::InvalidUsername("admin is reserved"));
        }
        let (salt, hash) =
            parse_credential(credential).ok_or(AuthError::InvalidPassword("malformed credential"))?;
        let mut guard = self.write();
        let mut next = guard.clone();
        next.upsert(user, salt, hash, grants);
        write_private(&self.shared.conf_path, &next.render())?;
        *guard = next;
        Ok(())
    }

    /// Whether `user` exists in `proxy.conf`.
    pub fn has_user(&self, user: &str) -> bool {
        self.read().credential(user).is_some()
    }

    /// Whether `user` may call `permission` (as the request check does).
    pub fn allows(&self, user: &str, permission: Permission) -> bool {
        self.read().allows(user, permission)
    }

    /// Whether `user` may call every route: its whitelist holds `*`, or it has none and
    /// `rpcwhitelistdefault` is on.
    pub fn has_full_access(&self, user: &str) -> bool {
        let file = self.read();
        if file.credential(user).is_none() {
            return false;
        }
        match file.whitelist(user) {
            Some(tokens) => tokens.iter().any(|t| t == "*"),
            None => file.whitelist_default(),
        }
    }

    /// `rpcwhitelistdefault`: what a user without a whitelist line may do.
    pub fn whitelist_default(&self) -> bool {
        self.read().whitelist_default()
    }

    /// The user's whitelist entries as written (`None` without a whitelist line).
    pub fn whitelist(&self, user: &str) -> Option<Vec<String>> {
        self.read().whitelist(user).map(<[String]>::to_vec)
    }

    /// Removes a user's `rpcauth` and `rpcwhitelist` lines and rewrites `proxy.conf` atomically. `admin`
    /// cannot be removed (the reference allows it and then nobody can manage users through the API).
    pub fn remove_user(&self, user: &str) -> Result<(), AuthError> {
        if user == ADMIN_USER {
            return Err(AuthError::AdminRemoval);
        }
        let mut guard = self.write();
        let mut next = guard.clone();
        if !next.remove(user) {
            return Err(AuthError::UnknownUser(user.to_owned()));
        }
        write_private(&self.shared.conf_path, &next.render())?;
        *guard = next;
        Ok(())
    }

    /// The tower layer protecting a route with `permission`; see [`require`].
    pub fn require(&self, permission: Permission) -> RequireLayer {
        RequireLayer { store: self.clone(), permission }
    }
}

/// Parses `Basic base64(user:password)` (scheme case-insensitive); both parts must be non-empty.
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let (scheme, encoded) = value.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (!user.is_empty() && !password.is_empty()).then(|| (user.to_owned(), password.to_owned()))
}

// ---------------------------------------------------------------------------------------------------
// Tower layer
// ---------------------------------------------------------------------------------------------------

/// Protects a route (`.route_layer(require(&store, Permission::GetBids))`) or a `MethodRouter`
/// (`get(handler).layer(…)`) with one permission.
pub fn require(store: &AuthStore, permission: Permission) -> RequireLayer {
    store.require(permission)
}

/// The layer built by [`require`].
#[derive(Debug, Clone)]
pub struct RequireLayer {
    store: AuthStore,
    permission: Permission,
}

impl<S> tower::Layer<S> for RequireLayer {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService { inner, store: self.store.clone(), permission: self.permission }
    }
}

/// The service built by [`RequireLayer`]: answers 401/403 itself, otherwise calls the inner service with
/// the [`Principal`] in the request extensions.
#[derive(Debug, Clone)]
pub struct RequireService<S> {
    inner: S,
    store: AuthStore,
    permission: Permission,
}

impl<S, B> tower::Service<Request<B>> for RequireService<S>
where
    S: tower::Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match self.store.authorize(request.headers(), self.permission) {
            Err(rejection) => Box::pin(std::future::ready(Ok(rejection.into_response()))),
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                // The clone that was polled ready is the one called (tower's documented pattern).
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                Box::pin(ready.call(request))
            }
        }
    }
}

#[cfg(test)]
mod tests;
